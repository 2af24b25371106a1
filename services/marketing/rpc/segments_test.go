package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestSegmentsOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	consented := sys.captureLead(t, key, `{"email":"yes@example.com","tags":["vip"],"consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`)["id"].(string)
	sys.captureLead(t, key, `{"email":"no@example.com","tags":["vip"],"consent":[{"channel":"CHANNEL_EMAIL","granted":false}]}`)
	sys.captureLead(t, key, `{"email":"silent@example.com","tags":["vip"]}`)
	customer := sys.captureLead(t, key, `{"email":"client@example.com","consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`)["customerId"].(string)
	sys.Do(t, http.MethodPost, lifecyclePath(customer, ":move"), key, []byte(`{"stage":"LIFECYCLE_STAGE_CLIENT","cause":"test"}`))

	create := sys.Do(t, http.MethodPost, "/v1/segments", key, []byte(`{"displayName":"VIP newsletter","contactChannel":"CHANNEL_EMAIL","rule":{"tags":["vip"]}}`))
	if create.Status != http.StatusOK || create.JSON(t)["id"] == nil {
		t.Fatalf("create: %d %s", create.Status, create.Body)
	}
	id := create.JSON(t)["id"].(string)
	members := func(k, seg, token string) gatewaytest.Response {
		return sys.Do(t, http.MethodGet, "/v1/segments/"+seg+"/members?pageSize=1&pageToken="+token, k, nil)
	}
	var got []string
	for token := ""; ; {
		r := members(reader, id, token)
		if r.Status != http.StatusOK {
			t.Fatalf("members: %d %s", r.Status, r.Body)
		}
		leads, _ := r.JSON(t)["leads"].([]any)
		for _, l := range leads {
			got = append(got, l.(map[string]any)["id"].(string))
		}
		token, _ = r.JSON(t)["nextPageToken"].(string)
		if token == "" {
			break
		}
	}
	if !slices.Equal(got, []string{consented}) {
		t.Fatalf("members of an e-mail VIP segment = %v, want only the lead with e-mail consent %s", got, consented)
	}
	clients := sys.Do(t, http.MethodPost, "/v1/segments", key, []byte(`{"displayName":"Clients","rule":{"lifecycleStages":["LIFECYCLE_STAGE_CLIENT"]}}`)).JSON(t)["id"].(string)
	if r := members(key, clients, ""); r.Status != http.StatusOK || len(r.JSON(t)["leads"].([]any)) != 1 ||
		r.JSON(t)["leads"].([]any)[0].(map[string]any)["customerId"] != customer {
		t.Fatalf("members of the client segment: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/segments/"+id, reader, nil); r.Status != http.StatusOK || r.JSON(t)["displayName"] != "VIP newsletter" {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/segments?pageSize=1", reader, nil); r.Status != http.StatusOK || len(r.JSON(t)["segments"].([]any)) != 1 || r.JSON(t)["nextPageToken"] == nil {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}

	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b699"
	before, beforeEvents := sys.footprint(t, tenant)
	for _, tt := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"no name", http.MethodPost, "/v1/segments", key, `{"rule":{}}`, 400, "INVALID_ARGUMENT", "segment.displayName"},
		{"no rule", http.MethodPost, "/v1/segments", key, `{"displayName":"x"}`, 400, "INVALID_ARGUMENT", "segment.rule"},
		{"unspecified stage", http.MethodPost, "/v1/segments", key, `{"displayName":"x","rule":{"lifecycleStages":["LIFECYCLE_STAGE_UNSPECIFIED"]}}`, 400, "INVALID_ARGUMENT", "segment.rule.lifecycleStages[0]"},
		{"score range upside down", http.MethodPost, "/v1/segments", key, `{"displayName":"x","rule":{"minScore":50,"maxScore":10}}`, 400, "INVALID_ARGUMENT", "segment.rule.maxScore"},
		{"create with a read-only key", http.MethodPost, "/v1/segments", reader, `{"displayName":"x","rule":{}}`, 403, "PERMISSION_DENIED", ""},
		{"unknown segment", http.MethodGet, "/v1/segments/" + unknown, key, ``, 404, "NOT_FOUND", ""},
		{"members of an unknown segment", http.MethodGet, "/v1/segments/" + unknown + "/members", key, ``, 404, "NOT_FOUND", ""},
		{"delete an unknown segment", http.MethodDelete, "/v1/segments/" + unknown, key, ``, 404, "NOT_FOUND", ""},
		{"forged member token", http.MethodGet, "/v1/segments/" + id + "/members?pageToken=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", key, ``, 400, "INVALID_ARGUMENT", "pageToken"},
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
			r := sys.Do(t, tt.method, tt.path, tt.key, body)
			if r.Status != tt.code || r.ErrorStatus(t) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	if after, afterEvents := sys.footprint(t, tenant); after != before || afterEvents != beforeEvents {
		t.Fatalf("rejected requests wrote: keys %d -> %d, events %d -> %d", before, after, beforeEvents, afterEvents)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/segments", stranger, nil); r.Status != http.StatusOK || r.JSON(t)["segments"] != nil {
		t.Fatalf("another tenant's list: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodDelete, "/v1/segments/"+id, key, nil); r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/segments/"+id, key, nil); r.Status != http.StatusNotFound {
		t.Fatalf("get after delete: %d, want 404", r.Status)
	}
}

func TestSegmentsOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
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

func TestSegmentsOnValueOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	seg := sys.OK(t, http.MethodPost, "/v1/segments", key, `{"displayName":"Loyal big spenders","contactChannel":"CHANNEL_EMAIL",
		"rule":{"customerTypes":["CUSTOMER_TYPE_LOYAL"],"minRecency":4,"minOrders":"2","minLifetimeValue":{"currencyCode":"EUR","units":"1000"}}}`)
	rule, _ := seg["rule"].(map[string]any)
	if rule["minRecency"] != float64(4) || rule["minOrders"] != "2" {
		t.Fatalf("segment rule = %v", rule)
	}
	if got := sys.OK(t, http.MethodGet, "/v1/segments/"+seg["id"].(string)+"/members", key, ""); got["leads"] != nil {
		t.Fatalf("members before any value = %v", got)
	}
	for body, field := range map[string]string{
		`{"displayName":"x","rule":{"customerTypes":["CUSTOMER_TYPE_VIP"]}}`:                                                                       "rule.customerTypes[0]",
		`{"displayName":"x","rule":{"minMonetary":6}}`:                                                                                             "rule.minMonetary",
		`{"displayName":"x","rule":{"minOrders":"3","maxOrders":"2"}}`:                                                                             "segment.rule.maxOrders",
		`{"displayName":"x","rule":{"minLifetimeValue":{"currencyCode":"EUR","units":"5"},"maxLifetimeValue":{"currencyCode":"USD","units":"9"}}}`: "segment.rule.maxLifetimeValue",
		`{"displayName":"x","rule":{"minLifetimeValue":{"currencyCode":"EUR","units":"-100"}}}`:                                                    "segment.rule.minLifetimeValue",
		`{"displayName":"x","rule":{"maxLifetimeValue":{"currencyCode":"EUR","nanos":-1}}}`:                                                        "segment.rule.maxLifetimeValue",
	} {
		details := sys.Fails(t, http.MethodPost, "/v1/segments", key, body, http.StatusBadRequest, "INVALID_ARGUMENT")
		if !strings.Contains(fmt.Sprint(details), field) {
			t.Errorf("%s: details %v, want a violation of %s", body, details, field)
		}
	}
}
