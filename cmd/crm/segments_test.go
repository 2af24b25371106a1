package main

import (
	"net/http"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestSegmentsOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.newKey(t, tenant, "marketing.read")
	_, stranger := sys.newKey(t, "", "marketing.read", "marketing.write")
	consented := sys.captureLead(t, key, `{"email":"yes@example.com","tags":["vip"],"consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`)["id"].(string)
	sys.captureLead(t, key, `{"email":"no@example.com","tags":["vip"],"consent":[{"channel":"CHANNEL_EMAIL","granted":false}]}`)
	sys.captureLead(t, key, `{"email":"silent@example.com","tags":["vip"]}`)
	customer := sys.captureLead(t, key, `{"email":"client@example.com","consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`)["customerId"].(string)
	sys.do(t, http.MethodPost, lifecyclePath(customer, ":move"), key, []byte(`{"stage":"LIFECYCLE_STAGE_CLIENT","cause":"test"}`))

	create := sys.do(t, http.MethodPost, "/v1/segments", key, []byte(`{"displayName":"VIP newsletter","contactChannel":"CHANNEL_EMAIL","rule":{"tags":["vip"]}}`))
	if create.status != http.StatusOK || create.json(t)["id"] == nil {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	id := create.json(t)["id"].(string)
	members := func(k, seg, token string) response {
		return sys.do(t, http.MethodGet, "/v1/segments/"+seg+"/members?pageSize=1&pageToken="+token, k, nil)
	}
	var got []string
	for token := ""; ; {
		r := members(reader, id, token)
		if r.status != http.StatusOK {
			t.Fatalf("members: %d %s", r.status, r.body)
		}
		leads, _ := r.json(t)["leads"].([]any)
		for _, l := range leads {
			got = append(got, l.(map[string]any)["id"].(string))
		}
		token, _ = r.json(t)["nextPageToken"].(string)
		if token == "" {
			break
		}
	}
	if !slices.Equal(got, []string{consented}) {
		t.Fatalf("members of an e-mail VIP segment = %v, want only the lead with e-mail consent %s", got, consented)
	}
	clients := sys.do(t, http.MethodPost, "/v1/segments", key, []byte(`{"displayName":"Clients","rule":{"lifecycleStages":["LIFECYCLE_STAGE_CLIENT"]}}`)).json(t)["id"].(string)
	if r := members(key, clients, ""); r.status != http.StatusOK || len(r.json(t)["leads"].([]any)) != 1 ||
		r.json(t)["leads"].([]any)[0].(map[string]any)["customerId"] != customer {
		t.Fatalf("members of the client segment: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/segments/"+id, reader, nil); r.status != http.StatusOK || r.json(t)["displayName"] != "VIP newsletter" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/segments?pageSize=1", reader, nil); r.status != http.StatusOK || len(r.json(t)["segments"].([]any)) != 1 || r.json(t)["nextPageToken"] == nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b699"
	before, beforeEvents := sys.tenantFootprint(t, tenant)
	for _, tt := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"no name", http.MethodPost, "/v1/segments", key, `{"rule":{}}`, 400, "INVALID_ARGUMENT", "segment.display_name"},
		{"no rule", http.MethodPost, "/v1/segments", key, `{"displayName":"x"}`, 400, "INVALID_ARGUMENT", "segment.rule"},
		{"unspecified stage", http.MethodPost, "/v1/segments", key, `{"displayName":"x","rule":{"lifecycleStages":["LIFECYCLE_STAGE_UNSPECIFIED"]}}`, 400, "INVALID_ARGUMENT", "segment.rule.lifecycle_stages[0]"},
		{"score range upside down", http.MethodPost, "/v1/segments", key, `{"displayName":"x","rule":{"minScore":50,"maxScore":10}}`, 400, "INVALID_ARGUMENT", "segment.rule.max_score"},
		{"create with a read-only key", http.MethodPost, "/v1/segments", reader, `{"displayName":"x","rule":{}}`, 403, "PERMISSION_DENIED", ""},
		{"unknown segment", http.MethodGet, "/v1/segments/" + unknown, key, ``, 404, "NOT_FOUND", ""},
		{"members of an unknown segment", http.MethodGet, "/v1/segments/" + unknown + "/members", key, ``, 404, "NOT_FOUND", ""},
		{"delete an unknown segment", http.MethodDelete, "/v1/segments/" + unknown, key, ``, 404, "NOT_FOUND", ""},
		{"forged member token", http.MethodGet, "/v1/segments/" + id + "/members?pageToken=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", key, ``, 400, "INVALID_ARGUMENT", "page_token"},
		{"bad segment id", http.MethodGet, "/v1/segments/nope", key, ``, 400, "INVALID_ARGUMENT", "id"},
		{"another tenant's segment", http.MethodGet, "/v1/segments/" + id, stranger, ``, 404, "NOT_FOUND", ""},
		{"another tenant's members", http.MethodGet, "/v1/segments/" + id + "/members", stranger, ``, 404, "NOT_FOUND", ""},
		{"another tenant's delete", http.MethodDelete, "/v1/segments/" + id, stranger, ``, 404, "NOT_FOUND", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.do(t, tt.method, tt.path, tt.key, body)
			if r.status != tt.code || errorStatus(t, r) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(fieldViolations(t, r), tt.field) {
				t.Fatalf("field violations %v, want %s", fieldViolations(t, r), tt.field)
			}
		})
	}
	if after, afterEvents := sys.tenantFootprint(t, tenant); after != before || afterEvents != beforeEvents {
		t.Fatalf("rejected requests wrote: keys %d -> %d, events %d -> %d", before, after, beforeEvents, afterEvents)
	}
	if r := sys.do(t, http.MethodGet, "/v1/segments", stranger, nil); r.status != http.StatusOK || r.json(t)["segments"] != nil {
		t.Fatalf("another tenant's list: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodDelete, "/v1/segments/"+id, key, nil); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/segments/"+id, key, nil); r.status != http.StatusNotFound {
		t.Fatalf("get after delete: %d, want 404", r.status)
	}
}

func TestSegmentsOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	lead, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc-seg@example.com", Channel: typev1.Channel_CHANNEL_ADS}})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := client.CreateSegment(ctx, &marketingv1.CreateSegmentRequest{Segment: &marketingv1.Segment{DisplayName: "Ads prospects",
		Rule: &marketingv1.SegmentRule{SourceChannels: []typev1.Channel{typev1.Channel_CHANNEL_ADS},
			LifecycleStages: []marketingv1.LifecycleStage{marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := seg.GetSegment().GetId()
	if got, err := client.GetSegment(ctx, &marketingv1.GetSegmentRequest{Id: id}); err != nil || got.GetSegment().GetDisplayName() != "Ads prospects" {
		t.Fatalf("get: %v %v", got, err)
	}
	if got, err := client.ListSegments(ctx, &marketingv1.ListSegmentsRequest{}); err != nil || len(got.GetSegments()) != 1 {
		t.Fatalf("list: %v %v", got, err)
	}
	members, err := client.ListSegmentMembers(ctx, &marketingv1.ListSegmentMembersRequest{Id: id})
	if err != nil || len(members.GetLeads()) != 1 || members.GetLeads()[0].GetId() != lead.GetLead().GetId() {
		t.Fatalf("members: %v %v", members, err)
	}
	if _, err := client.CreateSegment(ctx, &marketingv1.CreateSegmentRequest{Segment: &marketingv1.Segment{Rule: &marketingv1.SegmentRule{}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("create without name: %v, want InvalidArgument", err)
	}
	if _, err := client.DeleteSegment(ctx, &marketingv1.DeleteSegmentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListSegmentMembers(ctx, &marketingv1.ListSegmentMembersRequest{Id: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("members of a deleted segment: %v, want NotFound", err)
	}
}
