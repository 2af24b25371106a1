package rpc_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// EraseCustomer erases a person whether they have leads or not, as erasing their lead does.
func TestEraseCustomer(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	erasedEvents := func() []string {
		var out []string
		for _, ev := range sys.events(t, tenant, marketingv1.EventCustomerErased.Name) {
			out = append(out, ev.GetCustomerId())
		}
		return out
	}

	t.Run("a person with no lead", func(t *testing.T) {
		email := "contact." + uuid.NewString()[:8] + "@example.com"
		customer := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key,
			`{"email":"`+email+`","create":true}`)["customer"].(map[string]any)["customerId"].(string)
		sys.OK(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, `{"points":"50","reason":"welcome"}`)
		sys.OK(t, http.MethodPost, lifecyclePath(customer, ":setAtRisk"), key, `{"reason":"nps-detractor"}`)

		got := sys.OK(t, http.MethodPost, "/v1/customers/"+customer+":erase", key, `{}`)
		if ids, _ := got["customerIds"].([]any); len(ids) != 1 || ids[0] != customer || got["leadIds"] != nil {
			t.Fatalf("erase = %v, want customer %s and no lead", got, customer)
		}
		for _, path := range []string{loyaltyPath(customer, ""), lifecyclePath(customer, "")} {
			if r := sys.Do(t, http.MethodGet, path, key, nil); r.Status != http.StatusNotFound {
				t.Errorf("GET %s after the erase: %d %s, want 404", path, r.Status, r.Body)
			}
		}
		if !slices.Contains(erasedEvents(), customer) {
			t.Errorf("marketing.customer.erased does not name %s", customer)
		}
		personErased(t, sys, key, nil, []string{email}, []string{customer})
	})

	t.Run("a person with leads, by a merged customer's id", func(t *testing.T) {
		a, b := "ea."+uuid.NewString()[:8]+"@example.com", "eb."+uuid.NewString()[:8]+"@example.com"
		first := sys.captureLead(t, key, `{"email":"`+a+`","givenName":"Mona"}`)
		survivor := first["customerId"].(string)
		sys.OK(t, http.MethodPatch, "/v1/leads/"+first["id"].(string)+"?updateMask=email", key, `{"email":"`+b+`"}`)
		second := sys.captureLead(t, key, `{"email":"`+a+`"}`)
		c := "ec." + uuid.NewString()[:8] + "@example.com"
		merged := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key,
			`{"email":"`+c+`","create":true}`)["customer"].(map[string]any)["customerId"].(string)
		sys.OK(t, http.MethodPost, "/v1/customers/"+survivor+":merge", key, `{"mergedCustomerId":"`+merged+`"}`)

		got, err := client.EraseCustomer(ctx, &marketingv1.EraseCustomerRequest{CustomerId: merged})
		if err != nil {
			t.Fatal(err)
		}
		leads := []string{first["id"].(string), second["id"].(string)}
		if !slices.Equal(got.GetCustomerIds(), []string{survivor, merged}) ||
			len(got.GetLeadIds()) != 2 || !slices.Contains(got.GetLeadIds(), leads[0]) || !slices.Contains(got.GetLeadIds(), leads[1]) {
			t.Fatalf("erase of the merged customer = %v, want the survivor %s, then %s, and leads %v", got, survivor, merged, leads)
		}
		if ev := erasedEvents(); !slices.Contains(ev, survivor) || !slices.Contains(ev, merged) {
			t.Errorf("customers erased = %v, want %s and %s among them", ev, survivor, merged)
		}
		personErased(t, sys, key, leads, []string{a, b, c}, []string{survivor, merged})
	})

	t.Run("unknown, erased, another tenant's, bad", func(t *testing.T) {
		customer := sys.newCustomer(t, key)
		otherTenant, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
		keys, events := sys.footprint(t, tenant)
		otherKeys, otherEvents := sys.footprint(t, otherTenant)
		for _, c := range []struct{ name, key, id string }{
			{"unknown", key, uuid.NewString()},
			{"another tenant's", stranger, customer},
		} {
			r := sys.Do(t, http.MethodPost, "/v1/customers/"+c.id+":erase", c.key, []byte(`{}`))
			if r.Status != http.StatusNotFound || !slices.Contains(reasons(t, r.JSON(t)), "CUSTOMER_NOT_FOUND") {
				t.Errorf("erase %s: %d %s, want 404 CUSTOMER_NOT_FOUND", c.name, r.Status, r.Body)
			}
		}
		if r := sys.Do(t, http.MethodPost, "/v1/customers/not-a-uuid:erase", key, []byte(`{}`)); r.Status != http.StatusBadRequest ||
			!slices.Contains(r.FieldViolations(t), "customerId") {
			t.Errorf("erase of a bad id: %d %s, want 400 naming customerId", r.Status, r.Body)
		}
		if r := sys.DoWith(t, http.MethodPost, "/v1/customers/"+customer+":erase", key, []byte(`{}`), http.Header{"If-Match": {`"1"`}}); r.Status != http.StatusBadRequest {
			t.Errorf("erase with If-Match: %d %s, want 400", r.Status, r.Body)
		}
		_, reader := sys.NewKey(t, tenant, "marketing.read")
		if r := sys.Do(t, http.MethodPost, "/v1/customers/"+customer+":erase", reader, []byte(`{}`)); r.Status != http.StatusForbidden {
			t.Errorf("erase with a key without marketing.write: %d %s, want 403", r.Status, r.Body)
		}
		if k, e := sys.footprint(t, tenant); k != keys || e != events {
			t.Errorf("refused erasures changed the tenant: %d keys %d events, want %d %d", k, e, keys, events)
		}
		if k, e := sys.footprint(t, otherTenant); k != otherKeys || e != otherEvents {
			t.Errorf("refused erasures changed the other tenant: %d keys %d events, want %d %d", k, e, otherKeys, otherEvents)
		}
		if _, err := client.GetCustomerIdentity(ctx, &marketingv1.GetCustomerIdentityRequest{CustomerId: customer}); err != nil {
			t.Fatalf("the customer after another tenant's erase: %v", err)
		}

		// Two erasures at once: one erases, the other finds nobody; again is 404 and writes nothing.
		errs := servicetest.AtOnce(
			func() error {
				_, err := client.EraseCustomer(ctx, &marketingv1.EraseCustomerRequest{CustomerId: customer})
				return err
			},
			func() error {
				_, err := client.EraseCustomer(ctx, &marketingv1.EraseCustomerRequest{CustomerId: customer})
				return err
			},
		)
		codesGot := []codes.Code{status.Code(errs[0]), status.Code(errs[1])}
		slices.Sort(codesGot)
		if !slices.Equal(codesGot, []codes.Code{codes.OK, codes.NotFound}) {
			t.Fatalf("two erasures at once: %v, want one OK and one NOT_FOUND", errs)
		}
		if n := slices.Index(erasedEvents(), customer); n < 0 || slices.Index(erasedEvents()[n+1:], customer) >= 0 {
			t.Errorf("customers erased = %v, want %s once", erasedEvents(), customer)
		}
		keys, events = sys.footprint(t, tenant)
		if _, err := client.EraseCustomer(ctx, &marketingv1.EraseCustomerRequest{CustomerId: customer}); status.Code(err) != codes.NotFound {
			t.Errorf("erase again: %v, want NOT_FOUND", err)
		}
		if k, e := sys.footprint(t, tenant); k != keys || e != events {
			t.Errorf("a second erasure changed the tenant: %d keys %d events, want %d %d", k, e, keys, events)
		}
	})
}

// reasons are the ErrorInfo reasons of an AIP-193 error body.
func reasons(t *testing.T, body map[string]any) []string {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	var out []string
	for _, d := range details {
		if r, ok := d.(map[string]any)["reason"].(string); ok {
			out = append(out, r)
		}
	}
	return out
}
