package rpc_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestLeadsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")

	captured := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":" Ada@Example.com ","givenName":"Ada",
		"familyName":"Lovelace","company":"Analytical","channel":"CHANNEL_WEB",
		"consent":[{"channel":"CHANNEL_EMAIL","granted":true}],"tags":["webinar"]}`))
	if captured.Status != http.StatusOK {
		t.Fatalf("capture: %d %s", captured.Status, captured.Body)
	}
	lead := captured.JSON(t)
	id, _ := lead["id"].(string)
	for field, want := range map[string]any{"email": "ada@example.com", "givenName": "Ada",
		"channel": "CHANNEL_WEB", "status": "LEAD_STATUS_NEW", "touchCount": "1", "etag": "1"} {
		if lead[field] != want {
			t.Errorf("captured %s = %v, want %v", field, lead[field], want)
		}
	}
	if id == "" || lead["customerId"] == "" {
		t.Fatalf("capture returned no id or customer id: %s", captured.Body)
	}

	got := sys.Do(t, http.MethodGet, "/v1/leads/"+id, key, nil)
	if got.Status != http.StatusOK || got.JSON(t)["email"] != "ada@example.com" {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}

	for i := range 2 {
		r := sys.Do(t, http.MethodPost, "/v1/leads", key, fmt.Appendf(nil, `{"email":"more%d@example.com"}`, i))
		if r.Status != http.StatusOK {
			t.Fatalf("capture %d: %d %s", i, r.Status, r.Body)
		}
	}
	first := sys.Do(t, http.MethodGet, "/v1/leads?pageSize=2", key, nil).JSON(t)
	token, _ := first["nextPageToken"].(string)
	if n := len(first["leads"].([]any)); n != 2 || token == "" {
		t.Fatalf("first page: %d leads, token %q; want 2 and a token", n, token)
	}
	second := sys.Do(t, http.MethodGet, "/v1/leads?pageSize=2&pageToken="+url.QueryEscape(token), key, nil).JSON(t)
	leads, _ := second["leads"].([]any)
	if len(leads) != 1 || second["nextPageToken"] != nil {
		t.Fatalf("second page: %v; want 1 lead and no token", second)
	}
	if oldest := leads[0].(map[string]any)["id"]; oldest != id {
		t.Fatalf("last lead of the newest-first list is %v, want the first captured %s", oldest, id)
	}

	again := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ADA@example.COM","channel":"CHANNEL_EVENT"}`))
	if again.Status != http.StatusOK {
		t.Fatalf("recapture: %d %s", again.Status, again.Body)
	}
	re := again.JSON(t)
	if re["id"] != id || re["customerId"] != lead["customerId"] || re["touchCount"] != "2" {
		t.Fatalf("recapture in other case = %s, want the same lead with 2 touches", again.Body)
	}
	missing := sys.Do(t, http.MethodGet, "/v1/leads/01a20b45-2a28-7f41-b702-1121b1b3b663", key, nil)
	if missing.Status != http.StatusNotFound || missing.ErrorStatus(t) != "NOT_FOUND" {
		t.Fatalf("unknown lead: %d %s, want 404 NOT_FOUND", missing.Status, missing.Body)
	}
}

func TestLeadsOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)

	captured, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{
		Email: "Grace@Example.com", GivenName: "Grace", Channel: typev1.Channel_CHANNEL_EVENT}})
	if err != nil {
		t.Fatal(err)
	}
	lead := captured.GetLead()
	got, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: lead.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lead, got.GetLead(), protocmp.Transform()); diff != "" {
		t.Fatalf("get differs from capture (-capture +get):\n%s", diff)
	}
	for i := range 2 {
		if _, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{
			Email: fmt.Sprintf("g%d@example.com", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	page1, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	page2, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{PageSize: 2, PageToken: page1.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(page1.GetLeads()) != 2 || len(page2.GetLeads()) != 1 || page2.GetNextPageToken() != "" {
		t.Fatalf("pages of %d and %d leads (next %q), want 2 and 1 and no token", len(page1.GetLeads()), len(page2.GetLeads()), page2.GetNextPageToken())
	}
	if page2.GetLeads()[0].GetId() != lead.GetId() {
		t.Fatalf("oldest lead = %s, want %s", page2.GetLeads()[0].GetId(), lead.GetId())
	}
	again, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: " grace@EXAMPLE.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetLead().GetId() != lead.GetId() || again.GetLead().GetTouchCount() != 2 {
		t.Fatalf("recapture = %v, want lead %s with 2 touches", again.GetLead(), lead.GetId())
	}
}
