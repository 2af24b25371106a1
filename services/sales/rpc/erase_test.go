package rpc_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
	"github.com/crmcycle/crm/services/sales/redisstore"
)

// TestEraseDeletesEveryContactOfTheCustomer: "marketing.customer.erased" deletes both contacts of
// the person (two e-mails, one customer) as a contact delete does: gone by id, from the list, the
// e-mail and name filters and the export, the e-mail free again, one "sales.contact.deleted" each;
// another person's contact stays, and the event delivered again changes nothing.
func TestEraseDeletesEveryContactOfTheCustomer(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", append(salesScopes, "sales.export")...)
	first := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"zeb@example.com","givenName":"Zebulon","phone":"+44 20 7946 0958"}`)
	customer := str(first, "customerId")
	sys.leads.mu.Lock()
	sys.leads.customers[record{tenant, "zeb.work@example.com"}] = customer // the person's second e-mail
	sys.leads.mu.Unlock()
	second := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"zeb.work@example.com","givenName":"Zebulon"}`)
	if str(second, "customerId") != customer {
		t.Fatalf("second contact of the person has customer %s, want %s", str(second, "customerId"), customer)
	}
	other := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"ada@example.com","givenName":"Ada"}`)

	payload, err := anypb.New(&marketingv1.CustomerErased{CustomerId: customer})
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventv1.Event{Id: uuid.NewString(), Type: marketingv1.EventCustomerErased.Name, TenantId: tenant, CustomerId: customer, Payload: payload}
	env := sales.Env{Store: redisstore.New(sys.Suite.Deps.Redis, sys.Suite.Deps.Keys),
		Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}, Now: time.Now}
	subs := events.Subscribe("sales", sales.NewReactions(env).Routes()...)
	if len(subs) != 1 || subs[0].Producer != "marketing" {
		t.Fatalf("subscriptions %v, want marketing's", subs)
	}
	for range 2 { // delivered, then again
		if err := subs[0].Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []map[string]any{first, second} {
		if r := sys.Do(t, http.MethodGet, "/v1/contacts/"+str(c, "id"), key, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET the erased contact %s: %d %s, want 404", str(c, "email"), r.Status, r.Body)
		}
	}
	sys.OK(t, http.MethodGet, "/v1/contacts/"+str(other, "id"), key, "")
	for _, filter := range []string{"", `email = "zeb@example.com"`, `email = "zeb.work@example.com"`, `displayName:"zeb*"`} {
		list := sys.OK(t, http.MethodGet, "/v1/contacts?filter="+url.QueryEscape(filter), key, "")
		contacts, _ := list["contacts"].([]any)
		want := 0
		if filter == "" {
			want = 1 // Ada
		}
		if len(contacts) != want {
			t.Errorf("contacts filtered by %q after the erase: %v, want %d", filter, contacts, want)
		}
	}
	export := exported(t, sys, "contacts", key, "", func() *salesv1.Contact { return &salesv1.Contact{} },
		func(c *salesv1.Contact) (string, []string) { return c.GetEmail(), nil })
	if _, ok := export["ada@example.com"]; !ok || len(export) != 1 {
		t.Errorf("export after the erase: %v, want Ada alone", export)
	}
	if n := len(sys.events(t, tenant, salesv1.EventContactDeleted.Name)); n != 2 {
		t.Errorf("%d contact.deleted events, want 2 (one per contact, none for the redelivery)", n)
	}
	sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"zeb@example.com","givenName":"Zebulon"}`)
}
