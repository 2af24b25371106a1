package rpc_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/sales/server"
)

func TestConvertLead(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	campaign := uuid.Must(uuid.NewV7()).String()
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "grace@navy.example", GivenName: "Grace", FamilyName: "Hopper",
		Company: "Navy", Channel: typev1.Channel_CHANNEL_EMAIL, CampaignId: campaign})
	leadID, customer := lead.GetId(), lead.GetCustomerId()

	got := sys.OK(t, http.MethodPost, "/v1/leads/"+leadID+":convert", key,
		`{"ownerId":"ada","opportunity":{"displayName":"Navy compilers","amount":{"currencyCode":"EUR","units":"5000"},"currencyCode":"EUR","closeDate":"2026-12-15"}}`)
	account, contact, opp := obj(got, "account"), obj(got, "contact"), obj(got, "opportunity")
	if str(account, "displayName") != "Navy" || str(account, "ownerId") != "ada" {
		t.Errorf("account = %v, want one named after the lead's company", account)
	}
	for field, want := range map[string]string{"customerId": customer, "email": "grace@navy.example", "givenName": "Grace",
		"accountId": str(account, "id"), "leadId": leadID, "campaignId": campaign} {
		if str(contact, field) != want {
			t.Errorf("contact.%s = %q, want %q", field, str(contact, field), want)
		}
	}
	for field, want := range map[string]any{"stage": "PROSPECTING", "probability": float64(10), "forecastCategory": "FORECAST_CATEGORY_PIPELINE",
		"customerId": customer, "campaignId": campaign, "contactId": str(contact, "id"), "accountId": str(account, "id"),
		"ownerId": "ada", "status": "OPPORTUNITY_STATUS_OPEN", "pipelineId": "default"} {
		if opp[field] != want {
			t.Errorf("opportunity.%s = %v, want %v", field, opp[field], want)
		}
	}
	converted := sys.events(t, tenant, "sales.lead.converted")
	if len(converted) != 1 {
		t.Fatalf("%d sales.lead.converted events, want 1", len(converted))
	}
	payload := &salesv1.LeadConverted{}
	if err := converted[0].GetPayload().UnmarshalTo(payload); err != nil {
		t.Fatal(err)
	}
	if payload.GetLeadId() != leadID || payload.GetCustomerId() != customer || payload.GetContactId() != str(contact, "id") ||
		payload.GetOpportunityId() != str(opp, "id") || payload.GetCampaignId() != campaign || converted[0].GetCustomerId() != customer {
		t.Fatalf("lead converted event = %v", payload)
	}

	// Converting again is refused; so is a disqualified lead; an unknown lead is NOT_FOUND.
	sys.Fails(t, http.MethodPost, "/v1/leads/"+leadID+":convert", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	other := sys.leads.add(tenant, &marketingv1.Lead{Email: "nope@example.com"}).GetId()
	sys.leads.disqualify(tenant, other)
	sys.Fails(t, http.MethodPost, "/v1/leads/"+other+":convert", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/leads/0190a0c1-0000-7000-8000-000000000000:convert", key, `{}`, http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodPost, "/v1/leads/x:convert", key, `{}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/leads/"+other+":convert", key, `{"opportunity":{}}`, http.StatusBadRequest, "INVALID_ARGUMENT")

	// A consumer (no company) converts to a contact without an account, or attaches to one.
	solo := sys.leads.add(tenant, &marketingv1.Lead{Email: "solo@home.example"})
	b2c := sys.OK(t, http.MethodPost, "/v1/leads/"+solo.GetId()+":convert", key, `{}`)
	if b2c["account"] != nil || b2c["opportunity"] != nil || str(obj(b2c, "contact"), "accountId") != "" {
		t.Fatalf("consumer conversion = %v, want a contact only", b2c)
	}
	joiner := sys.leads.add(tenant, &marketingv1.Lead{Email: "joiner@navy.example", Company: "Navy"})
	attached := sys.OK(t, http.MethodPost, "/v1/leads/"+joiner.GetId()+":convert", key, fmt.Sprintf(`{"accountId":%q}`, str(account, "id")))
	if str(obj(attached, "contact"), "accountId") != str(account, "id") || str(obj(attached, "account"), "id") != str(account, "id") {
		t.Fatalf("attached conversion = %v", attached)
	}
	late := sys.leads.add(tenant, &marketingv1.Lead{Email: "late@example.com"}).GetId()
	sys.Fails(t, http.MethodPost, "/v1/leads/"+late+":convert", key, `{"accountId":"0190a0c1-0000-7000-8000-000000000000"}`,
		http.StatusBadRequest, "INVALID_ARGUMENT")

	// Over gRPC too, and a key without marketing.read cannot read the lead to convert it.
	client, ctx := sys.sales(key)
	viaGRPC := sys.leads.add(tenant, &marketingv1.Lead{Email: "grpc@example.com", Company: "Wire"}).GetId()
	resp, err := client.ConvertLead(ctx, &salesv1.ConvertLeadRequest{LeadId: viaGRPC})
	if err != nil || resp.GetAccount().GetDisplayName() != "Wire" {
		t.Fatalf("ConvertLead over gRPC = %v, %v", resp, err)
	}
	_, salesOnly := sys.NewKey(t, tenant, "sales.read", "sales.write")
	sys.Fails(t, http.MethodPost, "/v1/leads/"+late+":convert", salesOnly, `{}`, http.StatusForbidden, "PERMISSION_DENIED")
}

// TestConcurrentConversionsConvertOnce: racing conversions of one lead create one contact.
func TestConcurrentConversionsConvertOnce(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "race@example.com", Company: "Race"}).GetId()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = sys.Do(t, http.MethodPost, "/v1/leads/"+lead+":convert", key, []byte(`{"opportunity":{"displayName":"Race deal"}}`)).Status
		})
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusBadRequest, http.StatusConflict:
		default:
			t.Errorf("conversion answered %d", c)
		}
	}
	contacts := ids(sys.OK(t, http.MethodGet, "/v1/contacts", key, ""), "contacts")
	opps := ids(sys.OK(t, http.MethodGet, "/v1/opportunities", key, ""), "opportunities")
	if won != 1 || len(contacts) != 1 || len(opps) != 1 || len(sys.events(t, tenant, "sales.lead.converted")) != 1 {
		t.Fatalf("%d conversions succeeded, %d contacts, %d opportunities: want one of each", won, len(contacts), len(opps))
	}
}

// TestConvertWithMarketingDown: marketing unreachable is UNAVAILABLE and writes nothing.
func TestConvertWithMarketingDown(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "down@example.com", Company: "Down"}).GetId()
	// A second sales on the same Redis that dials a marketing that is not there.
	cut := startSystem(t, func(o *servicetest.Options) { o.Unreachable = []string{"marketing"} })
	cut.Fails(t, http.MethodPost, "/v1/leads/"+lead+":convert", key, `{"opportunity":{"displayName":"Down deal"}}`,
		http.StatusServiceUnavailable, "UNAVAILABLE")
	if keys, events := sys.Suite.Footprint(t, server.Name, tenant); keys != 0 || events != 0 {
		t.Fatalf("a conversion without marketing left %d keys and %d events", keys, events)
	}
	sys.OK(t, http.MethodPost, "/v1/leads/"+lead+":convert", key, `{}`)
}
