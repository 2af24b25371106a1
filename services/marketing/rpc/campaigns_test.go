package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestCampaignsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")

	c := sys.createCampaign(t, key, campaignBody)
	id := c["id"].(string)
	if c["status"] != "CAMPAIGN_STATUS_DRAFT" || c["etag"] != "1" || c["displayName"] != "Spring webinar" {
		t.Fatalf("created campaign = %v", c)
	}
	if got := sys.Do(t, http.MethodGet, "/v1/campaigns/"+id, key, nil); got.Status != http.StatusOK || got.JSON(t)["id"] != id {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}

	// Update with a field mask: only the named field changes; a stale etag is 409.
	upd := sys.Do(t, http.MethodPatch, "/v1/campaigns/"+id+"?updateMask=displayName", key,
		[]byte(`{"displayName":"Spring webinar 2026","channel":"CHANNEL_ADS","etag":"1"}`))
	if upd.Status != http.StatusOK || upd.JSON(t)["displayName"] != "Spring webinar 2026" ||
		upd.JSON(t)["channel"] != "CHANNEL_EMAIL" || upd.JSON(t)["etag"] != "2" {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	stale := sys.Do(t, http.MethodPatch, "/v1/campaigns/"+id+"?updateMask=displayName", key, []byte(`{"displayName":"x","etag":"1"}`))
	if stale.Status != http.StatusConflict || stale.ErrorStatus(t) != "ABORTED" {
		t.Fatalf("stale etag: %d %s, want 409 ABORTED", stale.Status, stale.Body)
	}

	// The status machine.
	for _, step := range []struct {
		verb, want string
		code       int
	}{
		{"pause", "", http.StatusBadRequest}, // DRAFT cannot pause
		{"launch", "CAMPAIGN_STATUS_ACTIVE", http.StatusOK},
		{"launch", "", http.StatusBadRequest}, // already ACTIVE
		{"pause", "CAMPAIGN_STATUS_PAUSED", http.StatusOK},
		{"launch", "CAMPAIGN_STATUS_ACTIVE", http.StatusOK},
		{"complete", "CAMPAIGN_STATUS_COMPLETED", http.StatusOK},
		{"launch", "", http.StatusBadRequest}, // COMPLETED is final
	} {
		r := sys.Do(t, http.MethodPost, "/v1/campaigns/"+id+":"+step.verb, key, []byte(`{}`))
		if r.Status != step.code {
			t.Fatalf(":%s: %d %s, want %d", step.verb, r.Status, r.Body, step.code)
		}
		if step.code == http.StatusOK && r.JSON(t)["status"] != step.want {
			t.Fatalf(":%s: status %v, want %s", step.verb, r.JSON(t)["status"], step.want)
		}
		if step.code != http.StatusOK && r.ErrorStatus(t) != "FAILED_PRECONDITION" {
			t.Fatalf(":%s: %s, want FAILED_PRECONDITION", step.verb, r.Body)
		}
	}

	// Lists: newest first, by status and channel, two pages.
	other := sys.createCampaign(t, key, `{"displayName":"Ads push","channel":"CHANNEL_ADS"}`)["id"].(string)
	third := sys.createCampaign(t, key, `{"displayName":"Social","channel":"CHANNEL_SOCIAL"}`)["id"].(string)
	page1 := sys.Do(t, http.MethodGet, "/v1/campaigns?pageSize=2", key, nil).JSON(t)
	page2 := sys.Do(t, http.MethodGet, "/v1/campaigns?pageSize=2&pageToken="+page1["nextPageToken"].(string), key, nil).JSON(t)
	var ids []string
	for _, p := range []map[string]any{page1, page2} {
		for _, c := range p["campaigns"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
	}
	if !slices.Equal(ids, []string{third, other, id}) || page2["nextPageToken"] != nil {
		t.Fatalf("pages = %v, want [%s %s %s] and no more", ids, third, other, id)
	}
	for filter, want := range map[string]string{"status%20%3D%20CAMPAIGN_STATUS_COMPLETED": id, "channel%20%3D%20CHANNEL_ADS": other} {
		got := sys.Do(t, http.MethodGet, "/v1/campaigns?filter="+filter, key, nil).JSON(t)["campaigns"].([]any)
		if len(got) != 1 || got[0].(map[string]any)["id"] != want {
			t.Fatalf("filter %s: %v, want only %s", filter, got, want)
		}
	}
}

func TestCampaignPerformanceCountsCaptures(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	id := sys.createCampaign(t, key, campaignBody)["id"].(string)

	for i := range 4 {
		body := fmt.Sprintf(`{"email":"p%d@example.com","campaignId":"%s"}`, i, id)
		if r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(body)); r.Status != http.StatusOK {
			t.Fatalf("capture: %d %s", r.Status, r.Body)
		}
	}
	// A known lead reached again through the campaign is a touch, not a new lead.
	if r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"P0@example.com","campaignId":"`+id+`"}`)); r.Status != http.StatusOK {
		t.Fatalf("recapture: %d %s", r.Status, r.Body)
	}
	// A lead reached first elsewhere, then through the campaign: a touch too.
	sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"elsewhere@example.com"}`))
	sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"elsewhere@example.com","campaignId":"`+id+`"}`))

	perf := sys.Do(t, http.MethodGet, "/v1/campaigns/"+id+"/performance", key, nil)
	p := perf.JSON(t)
	if perf.Status != http.StatusOK || p["touches"] != "6" || p["leads"] != "4" {
		t.Fatalf("performance: %d %s, want 6 touches and 4 leads", perf.Status, perf.Body)
	}
	cpl := p["costPerLead"].(map[string]any) // 300 EUR / 4 leads = 75 EUR
	if cpl["currencyCode"] != "EUR" || cpl["units"] != "75" || cpl["nanos"] != nil {
		t.Fatalf("cost per lead = %v, want 75 EUR", cpl)
	}
	if p["roi"] != -1.0 { // no revenue yet: (0 - 300) / 300
		t.Fatalf("roi = %v, want -1", p["roi"])
	}

	// A capture naming a campaign that does not exist is refused and writes nothing.
	keysBefore, eventsBefore := sys.footprint(t, tenant)
	r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ghost@example.com","campaignId":"01a20b45-2a28-7f41-b702-1121b1b3b663"}`))
	if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "lead.campaignId") {
		t.Fatalf("capture with an unknown campaign: %d %s", r.Status, r.Body)
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("a refused capture wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
}

func TestCampaignBadInput(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	id := sys.createCampaign(t, key, campaignBody)["id"].(string)
	keysBefore, eventsBefore := sys.footprint(t, tenant)

	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"no name", "POST", "/v1/campaigns", `{"channel":"CHANNEL_EMAIL"}`, 400, "campaign.displayName"},
		{"no channel", "POST", "/v1/campaigns", `{"displayName":"x"}`, 400, "campaign.channel"},
		{"bad currency", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","budget":{"currencyCode":"euro","units":"1"}}`, 400, "campaign.budget.currencyCode"},
		{"nanos out of range", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","budget":{"currencyCode":"EUR","nanos":1000000000}}`, 400, "campaign.budget.nanos"},
		{"mixed signs", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","budget":{"currencyCode":"EUR","units":"1","nanos":-5}}`, 400, "campaign.budget"},
		{"negative budget", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","budget":{"currencyCode":"EUR","units":"-1"}}`, 400, "campaign"},
		{"ends before it starts", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","startTime":"2026-05-01T00:00:00Z","endTime":"2026-04-01T00:00:00Z"}`, 400, "campaign"},
		{"cost in another currency", "POST", "/v1/campaigns", `{"displayName":"x","channel":"CHANNEL_EMAIL","budget":{"currencyCode":"EUR","units":"1"},"actualCost":{"currencyCode":"USD","units":"1"}}`, 400, "campaign.actualCost"},
		{"update: unknown mask path", "PATCH", "/v1/campaigns/" + id + "?updateMask=status", `{"status":"CAMPAIGN_STATUS_ACTIVE"}`, 400, "updateMask"},
		{"update: clears a required field", "PATCH", "/v1/campaigns/" + id + "?updateMask=displayName", `{}`, 400, "campaign.displayName"},
		{"update: window turns invalid", "PATCH", "/v1/campaigns/" + id + "?updateMask=endTime", `{"endTime":"2026-01-01T00:00:00Z"}`, 400, "campaign"},
		{"update: bad id", "PATCH", "/v1/campaigns/nope?updateMask=displayName", `{"displayName":"x"}`, 400, "campaign.id"},
		{"bad filter", "GET", "/v1/campaigns?filter=budget%20%3E%201", "", 400, "filter"},
		{"bad id", "GET", "/v1/campaigns/42", "", 400, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, key, body)
			if r.Status != tt.status || !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("%d %s, want %d naming %s", r.Status, r.Body, tt.status, tt.field)
			}
		})
	}
	missing := "01a20b45-2a28-7f41-b702-1121b1b3b663"
	for _, path := range []string{"/v1/campaigns/" + missing, "/v1/campaigns/" + missing + "/performance"} {
		if r := sys.Do(t, http.MethodGet, path, key, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.Status)
		}
	}
	if r := sys.Do(t, http.MethodPost, "/v1/campaigns/"+missing+":launch", key, []byte(`{}`)); r.Status != http.StatusNotFound {
		t.Errorf("launch of a missing campaign: %d, want 404", r.Status)
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("rejected requests wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
}

func TestCampaignsOverGRPCAndConcurrentMoves(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	created, err := client.CreateCampaign(ctx, &marketingv1.CreateCampaignRequest{Campaign: &marketingv1.Campaign{
		DisplayName: "gRPC", Channel: typev1.Channel_CHANNEL_EVENT}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetCampaign().GetId()
	upd, err := client.UpdateCampaign(ctx, &marketingv1.UpdateCampaignRequest{
		Campaign:   &marketingv1.Campaign{Id: id, Budget: &typev1.Money{CurrencyCode: "USD", Units: 50}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"budget"}}})
	if err != nil || upd.GetCampaign().GetBudget().GetUnits() != 50 || upd.GetCampaign().GetDisplayName() != "gRPC" {
		t.Fatalf("update: %v %v", upd, err)
	}
	if _, err := client.PauseCampaign(ctx, &marketingv1.PauseCampaignRequest{Id: id}); status.Code(err) != codes.FailedPrecondition ||
		status.Convert(err).Message() != "a CAMPAIGN_STATUS_DRAFT campaign cannot become CAMPAIGN_STATUS_PAUSED" {
		t.Fatalf("pause a draft: %v, want FailedPrecondition naming both statuses", err)
	}

	// Ten concurrent launches of one draft: exactly one moves it, the rest are refused.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codesSeen := map[codes.Code]int{}
	for range 10 {
		wg.Go(func() {
			_, err := client.LaunchCampaign(ctx, &marketingv1.LaunchCampaignRequest{Id: id})
			mu.Lock()
			codesSeen[status.Code(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codesSeen[codes.OK] != 1 || codesSeen[codes.FailedPrecondition] != 9 {
		t.Fatalf("concurrent launches: %v, want 1 OK and 9 FailedPrecondition", codesSeen)
	}
	got, err := client.GetCampaign(ctx, &marketingv1.GetCampaignRequest{Id: id})
	if err != nil || got.GetCampaign().GetStatus() != marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE || got.GetCampaign().GetEtag() != "3" {
		t.Fatalf("after the launches: %v %v, want ACTIVE at etag 3", got, err)
	}
	perf, err := client.GetCampaignPerformance(ctx, &marketingv1.GetCampaignPerformanceRequest{Id: id})
	if err != nil || perf.GetPerformance().GetLeads() != 0 || perf.GetPerformance().GetCostPerLead() != nil {
		t.Fatalf("performance of a campaign without leads: %v %v", perf, err)
	}
	list, err := client.ListCampaigns(ctx, &marketingv1.ListCampaignsRequest{Filter: "status = CAMPAIGN_STATUS_ACTIVE"})
	if err != nil || len(list.GetCampaigns()) != 1 {
		t.Fatalf("list active: %v %v", list, err)
	}
}

func TestCampaignTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	_, owner := sys.NewKey(t, "", "admin")
	_, stranger := sys.NewKey(t, "", "admin")
	id := sys.createCampaign(t, owner, campaignBody)["id"].(string)

	for _, call := range []struct{ method, path, body string }{
		{"GET", "/v1/campaigns/" + id, ""},
		{"GET", "/v1/campaigns/" + id + "/performance", ""},
		{"PATCH", "/v1/campaigns/" + id + "?updateMask=displayName", `{"displayName":"mine"}`},
		{"POST", "/v1/campaigns/" + id + ":launch", `{}`},
		{"POST", "/v1/campaigns/" + id + ":pause", `{}`},
		{"POST", "/v1/campaigns/" + id + ":complete", `{}`},
	} {
		var body []byte
		if call.body != "" {
			body = []byte(call.body)
		}
		if r := sys.Do(t, call.method, call.path, stranger, body); r.Status != http.StatusNotFound {
			t.Errorf("%s %s with another tenant's key: %d %s, want 404", call.method, call.path, r.Status, r.Body)
		}
	}
	if got := sys.Do(t, http.MethodGet, "/v1/campaigns", stranger, nil).JSON(t)["campaigns"]; got != nil {
		t.Errorf("another tenant's list shows %v", got)
	}
	// Capturing into another tenant's campaign is refused like an unknown campaign.
	r := sys.Do(t, http.MethodPost, "/v1/leads", stranger, []byte(`{"email":"x@example.com","campaignId":"`+id+`"}`))
	if r.Status != http.StatusBadRequest {
		t.Errorf("capture into another tenant's campaign: %d %s, want 400", r.Status, r.Body)
	}
	if c := sys.Do(t, http.MethodGet, "/v1/campaigns/"+id, owner, nil).JSON(t); c["displayName"] != "Spring webinar" || c["status"] != "CAMPAIGN_STATUS_DRAFT" {
		t.Errorf("the owner's campaign changed: %v", c)
	}
}
