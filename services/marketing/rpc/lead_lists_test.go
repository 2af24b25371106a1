package rpc_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestLeadListFiltersOverRESTAndGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	camp := sys.createCampaign(t, key, campaignBody)["id"].(string)
	vip := sys.captureLead(t, key, `{"email":"vip@example.com","company":"Acme","tags":["vip"],"campaignId":"`+camp+`"}`)["id"].(string)
	plain := sys.captureLead(t, key, `{"email":"plain@example.com","channel":"CHANNEL_ADS"}`)["id"].(string)
	sys.Do(t, http.MethodPost, "/v1/leads/"+vip+"/engagements", key, []byte(`{"type":"ENGAGEMENT_TYPE_FORM_SUBMIT"}`))

	list := func(k, filter, orderBy, token string) gatewaytest.Response {
		v := url.Values{"filter": {filter}, "orderBy": {orderBy}, "pageSize": {"1"}, "pageToken": {token}}
		return sys.Do(t, http.MethodGet, "/v1/leads?"+v.Encode(), k, nil)
	}
	ids := func(r gatewaytest.Response) []string {
		var out []string
		for _, l := range r.JSON(t)["leads"].([]any) {
			out = append(out, l.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, tt := range []struct {
		filter, orderBy string
		want            []string
	}{
		{`tags:"vip"`, "", []string{vip}},
		{`campaignId = "` + camp + `"`, "", []string{vip}},
		{"channel = CHANNEL_ADS", "", []string{plain}},
		{"score >= 15", "", []string{vip}},
		{"status = LEAD_STATUS_ENGAGED AND score > 0", "score desc", []string{vip}},
	} {
		r := list(key, tt.filter, tt.orderBy, "")
		if r.Status != http.StatusOK || !slices.Equal(ids(r), tt.want) {
			t.Errorf("%q %q: %d %s, want %v", tt.filter, tt.orderBy, r.Status, r.Body, tt.want)
		}
		if r := list(stranger, tt.filter, tt.orderBy, ""); r.Status != http.StatusOK || r.JSON(t)["leads"] != nil {
			t.Errorf("another tenant's %q: %d %s, want no leads", tt.filter, r.Status, r.Body)
		}
	}
	// Highest score first across pages, with the token bound to its filter and order.
	first := list(key, "", "score desc", "")
	second := list(key, "", "score desc", first.JSON(t)["nextPageToken"].(string))
	if got := append(ids(first), ids(second)...); !slices.Equal(got, []string{vip, plain}) {
		t.Fatalf("by score: %v, want vip then plain", got)
	}
	for _, tt := range []struct{ name, filter, orderBy, token, field string }{
		{"two index fields", "status = LEAD_STATUS_NEW AND channel = CHANNEL_WEB", "", "", "filter"},
		{"score with a tag", `tags:"vip" AND score > 3`, "", "", "filter"},
		{"unknown field", "email = x@example.com", "", "", "filter"},
		{"create time order with a score range", "score > 3", "create_time desc", "", "orderBy"},
		{"unknown order", "", "email", "", "orderBy"},
		{"token of another order", "", "", first.JSON(t)["nextPageToken"].(string), "pageToken"},
	} {
		r := list(key, tt.filter, tt.orderBy, tt.token)
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), tt.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.name, r.Status, r.Body, tt.field)
		}
	}

	client, ctx := sys.marketing(key)
	got, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `tags:"vip"`})
	if err != nil || len(got.GetLeads()) != 1 || got.GetLeads()[0].GetId() != vip {
		t.Fatalf("gRPC tag filter: %v %v", got, err)
	}
	if _, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: "channel = CHANNEL_ADS", OrderBy: "score desc"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC score order with a channel: %v, want InvalidArgument", err)
	}
}
