package rpc_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestBatchGetCampaignsLeadsAndSegments(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	var campaigns, leads, segments []string
	for i := range 3 {
		campaigns = append(campaigns, sys.createCampaign(t, key, campaignBody)["id"].(string))
		leads = append(leads, sys.captureLead(t, key, fmt.Sprintf(`{"email":"b%d@example.com"}`, i))["id"].(string))
		segments = append(segments, sys.OK(t, http.MethodPost, "/v1/segments", key, fmt.Sprintf(`{"displayName":"S%d","rule":{"tags":["t%d"]}}`, i, i))["id"].(string))
	}
	sys.CheckBatchGet(t, "campaigns", key, stranger, campaigns)
	sys.CheckBatchGet(t, "leads", key, stranger, leads)
	sys.CheckBatchGet(t, "segments", key, stranger, segments)
	// A key with write but not read may not batch-get.
	_, writer := sys.NewKey(t, "", "marketing.write")
	sys.Fails(t, http.MethodGet, "/v1/leads:batchGet?ids="+leads[0], writer, "", http.StatusForbidden, "PERMISSION_DENIED")
}

// TestBatchCreateLeadsReportsEachItem: every item is a capture with its own result; an item with
// a bad e-mail or an unknown campaign is refused alone, nothing of it written; the same e-mail
// twice in one batch is one lead with two touches; the call over gRPC answers alike.
func TestBatchCreateLeadsReportsEachItem(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	body := `{"requests":[
		{"lead":{"email":"one@example.com","givenName":"One"}},
		{"lead":{"email":"not an e-mail"}},
		{"lead":{"email":"Two@Example.com"}},
		{"lead":{"email":"three@example.com","campaignId":"01900000-0000-7000-8000-000000000000"}},
		{"lead":{"email":"two@example.com","company":"Acme"}}]}`
	results := sys.OK(t, http.MethodPost, "/v1/leads:batchCreate", key, body)["results"].([]any)
	if len(results) != 5 {
		t.Fatalf("results: %v", results)
	}
	item := func(i int) (map[string]any, map[string]any) {
		r := results[i].(map[string]any)
		lead, _ := r["lead"].(map[string]any)
		e, _ := r["error"].(map[string]any)
		return lead, e
	}
	for i, wantCode := range []float64{0, 3, 0, 3, 0} { // OK, INVALID_ARGUMENT (e-mail), OK, INVALID_ARGUMENT (campaign), OK
		lead, e := item(i)
		if wantCode == 0 && (lead == nil || e != nil) || wantCode != 0 && (lead != nil || e["code"] != wantCode) {
			t.Errorf("item %d: lead %v error %v, want code %v", i, lead, e, wantCode)
		}
		if wantCode != 0 && !strings.Contains(fmt.Sprint(e["details"]), "ErrorInfo") {
			t.Errorf("item %d: error %v without its ErrorInfo", i, e)
		}
	}
	two, again := item(2)
	twice, _ := item(4)
	if again != nil || two["id"] != twice["id"] {
		t.Errorf("the same e-mail twice: %v and %v, want one lead", two["id"], twice["id"])
	}
	if got := len(sys.events(t, tenant, marketingv1.EventLeadCaptured.Name)); got != 3 {
		t.Errorf("captured events: %d, want 3 (two leads, one touch)", got)
	}

	// Concurrent batches of one e-mail: one lead, every touch recorded.
	client, ctx := sys.marketing(key)
	var wg sync.WaitGroup
	ids := make(chan string, 40)
	for range 4 {
		wg.Go(func() {
			var reqs []*marketingv1.CaptureLeadRequest
			for range 10 {
				reqs = append(reqs, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "race@example.com"}})
			}
			res, err := client.BatchCreateLeads(ctx, &marketingv1.BatchCreateLeadsRequest{Requests: reqs})
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range res.GetResults() {
				ids <- r.GetLead().GetId()
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]int{}
	for id := range ids {
		seen[id]++
	}
	if len(seen) != 1 {
		t.Errorf("concurrent batches of one e-mail made %d leads, want 1", len(seen))
	}
	lead, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "race@example.com"`})
	if err != nil || len(lead.GetLeads()) != 1 || lead.GetLeads()[0].GetTouchCount() != 40 {
		t.Errorf("race lead: %v %v, want one lead with 40 touches", lead, err)
	}
	// A whole batch that fails validation writes nothing: too many items, or an item over a limit.
	var tooMany []*marketingv1.CaptureLeadRequest
	for range 1001 {
		tooMany = append(tooMany, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "x@example.com"}})
	}
	if _, err := client.BatchCreateLeads(ctx, &marketingv1.BatchCreateLeadsRequest{Requests: tooMany}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("1,001 items: %v, want InvalidArgument", err)
	}
	r := sys.Do(t, http.MethodPost, "/v1/leads:batchCreate", key, []byte(`{"requests":[{"lead":{"email":"ok@example.com"}},{"lead":{"email":"x@example.com","givenName":"`+strings.Repeat("n", 101)+`"}}]}`))
	if r.Status != http.StatusBadRequest {
		t.Errorf("an item over a field limit: %d %s, want 400", r.Status, r.Body)
	}
	if got, _ := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "ok@example.com"`}); len(got.GetLeads()) != 0 {
		t.Errorf("a refused batch wrote %v", got.GetLeads())
	}
}
