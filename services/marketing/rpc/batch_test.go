package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/servicetest"
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

// TestBatchCreateLeadsOnTheEmbeddedStore runs on miniredis, as `crm dev` without --redis-url does,
// where every script call is slow (its Lua runs in Go, one call at a time): 1,000 new leads in one
// batch are written a few dozen to a script call, not one call each (round trips counted, not
// time, so a busy machine cannot fail it). A batch whose deadline comes first answers on time all
// the same: each item is written, or refused as not attempted with nothing of it written, so
// sending those again completes the batch, each lead captured once.
func TestBatchCreateLeadsOnTheEmbeddedStore(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	trips := &roundTrips{}
	rdb.AddHook(trips)
	sys := &system{Edge: gatewaytest.Start(t, servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}, Redis: rdb}), gateway.Config{})}
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	batchOf := func(prefix string, n int) []*marketingv1.CaptureLeadRequest {
		reqs := make([]*marketingv1.CaptureLeadRequest, n)
		for i := range reqs {
			reqs[i] = &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: fmt.Sprintf("%s.%d@example.com", prefix, i), GivenName: "G"}}
		}
		return reqs
	}
	call := func(reqs []*marketingv1.CaptureLeadRequest, deadline time.Duration) *marketingv1.BatchCreateLeadsResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		res, err := client.BatchCreateLeads(ctx, &marketingv1.BatchCreateLeadsRequest{Requests: reqs})
		if err != nil {
			t.Fatalf("%d items within %s: %v", len(reqs), deadline, err)
		}
		return res
	}

	before, began := trips.n.Load(), time.Now()
	for i, r := range call(batchOf("fast", 1000), time.Minute).GetResults() {
		if r.GetError() != nil || r.GetLead().GetTouchCount() != 1 {
			t.Fatalf("item %d: %v", i, r)
		}
	}
	took, sent := time.Since(began), trips.n.Load()-before
	t.Logf("1,000 new leads on miniredis in %s, %d round trips", took.Round(time.Millisecond), sent)
	// One script call per lead was 1,028 round trips; the batched write sends about 20.
	if sent > 100 {
		t.Fatalf("1,000 new leads took %d round trips to the store, want the writes batched (at most 100)", sent)
	}

	// Half that time as the deadline: the batch stops starting items two thirds of the way, and
	// what it started is written before the deadline.
	notAttempted := func(reqs []*marketingv1.CaptureLeadRequest, deadline time.Duration) []*marketingv1.CaptureLeadRequest {
		t.Helper()
		var again []*marketingv1.CaptureLeadRequest
		for i, r := range call(reqs, deadline).GetResults() {
			switch {
			case r.GetError() == nil && r.GetLead().GetEmail() == reqs[i].GetLead().GetEmail():
			case r.GetError().GetCode() == int32(codes.Aborted) && strings.Contains(fmt.Sprint(status.FromProto(r.GetError()).Details()), batch.ErrNotAttempted.Reason):
				again = append(again, reqs[i])
			default:
				t.Fatalf("item %d of a batch cut by its deadline: %v", i, r)
			}
		}
		return again
	}
	// A batch that happens to run faster than the first is cut by a shorter deadline: halve it.
	var reqs, again []*marketingv1.CaptureLeadRequest
	for round, deadline := 0, took/2; len(again) == 0; round, deadline = round+1, deadline/2 {
		if round == 4 {
			t.Fatal("four deadlines, each half the last, cut nothing")
		}
		cut := batchOf(fmt.Sprintf("cut%d", round), 1000)
		reqs = append(reqs, cut...)
		again = notAttempted(cut, deadline)
		t.Logf("%d of 1,000 items not attempted within %s", len(again), deadline.Round(time.Millisecond))
	}
	// Sent again (and again, on a machine busy enough to cut the retry too) until none is left.
	for range 10 {
		if again = notAttempted(again, 5*time.Second); len(again) == 0 {
			break
		}
	}
	if len(again) > 0 {
		t.Fatalf("%d items still not attempted after 10 retries", len(again))
	}
	touches := map[string]int64{}
	for token := ""; ; {
		page, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.GetLeads() {
			touches[l.GetEmail()] += l.GetTouchCount()
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, r := range reqs {
		if n := touches[r.GetLead().GetEmail()]; n != 1 {
			t.Fatalf("%s after the retry: %d touches, want one lead captured once", r.GetLead().GetEmail(), n)
		}
	}
	if len(touches) != 1000+len(reqs) {
		t.Fatalf("%d leads, want %d", len(touches), 1000+len(reqs))
	}
}

// roundTrips counts what a client sends on behalf of a gRPC call being served (not the event
// consumers sharing the client): a command or a pipeline is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) count(ctx context.Context) {
	if _, ok := grpc.Method(ctx); ok {
		c.n.Add(1)
	}
}

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(ctx)
		return next(ctx, cmd)
	}
}

func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count(ctx)
		return next(ctx, cmds)
	}
}
