package rpc_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
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

// TestMergeAndEraseUseTheCustomerIndex: a merged person's contacts and deals (two each, one of each
// written before the indexes by customer existed) all move to the survivor, records and indexes,
// on "marketing.customer.merged", and "marketing.customer.erased" of the survivor deletes exactly
// their contacts; each event is delivered twice, and another person's contact and deal are
// untouched throughout.
func TestMergeAndEraseUseTheCustomerIndex(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	contact := func(email string) map[string]any {
		return sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"`+email+`"}`)
	}
	first := contact("max@example.com")
	merged := str(first, "customerId")
	sys.leads.mu.Lock()
	sys.leads.customers[record{tenant, "max.work@example.com"}] = merged // the person's second e-mail
	sys.leads.mu.Unlock()
	second := contact("max.work@example.com")
	survivorContact := contact("maxine@example.com")
	survivor := str(survivorContact, "customerId")
	other := contact("ola@example.com")
	if str(second, "customerId") != merged || survivor == merged || str(other, "customerId") == merged {
		t.Fatalf("customers %s %s %s %s, want the first two alike and the others apart", merged, str(second, "customerId"), survivor, str(other, "customerId"))
	}

	// Deals: two of the merged person's (one per contact), one of another person's.
	deals := []map[string]any{sys.newDeal(t, key, str(first, "id"), ""), sys.newDeal(t, key, str(second, "id"), "")}
	otherDeal := sys.newDeal(t, key, str(other, "id"), "")

	// The second contact and its deal were written before the indexes by customer: out of them,
	// and the tenant not yet indexed.
	scope := sys.Suite.Deps.Keys.Scope("sales", tenant)
	rdb, ctx := sys.Suite.Deps.Redis, context.Background()
	if err := rdb.ZRem(ctx, scope.Key("ix", "contact", "customer_id", merged), str(second, "id")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZRem(ctx, scope.Key("ix", "opportunity", "customer_id", merged), str(deals[1], "id")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, scope.Key("indexes-built")).Err(); err != nil {
		t.Fatal(err)
	}

	env := sales.Env{Store: redisstore.New(rdb, sys.Suite.Deps.Keys),
		Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}, Now: time.Now}
	handle := events.Subscribe("sales", sales.NewReactions(env).Routes()...)[0].Handle
	deliverTwice := func(body proto.Message, eventType string) {
		t.Helper()
		payload, err := anypb.New(body)
		if err != nil {
			t.Fatal(err)
		}
		ev := &eventv1.Event{Id: uuid.NewString(), Type: eventType, TenantId: tenant, Payload: payload}
		for range 2 {
			if err := handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	otherBefore := sys.OK(t, http.MethodGet, "/v1/contacts/"+str(other, "id"), key, "")
	otherDealBefore := sys.OK(t, http.MethodGet, "/v1/opportunities/"+str(otherDeal, "id"), key, "")

	deliverTwice(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged}, marketingv1.EventCustomerMerged.Name)
	for _, c := range []map[string]any{first, second, survivorContact} {
		if got := sys.OK(t, http.MethodGet, "/v1/contacts/"+str(c, "id"), key, ""); str(got, "customerId") != survivor {
			t.Errorf("after the merge %s has customer %s, want the survivor %s", str(c, "email"), str(got, "customerId"), survivor)
		}
	}
	contactsOf := func(customer string) []string {
		t.Helper()
		found, _, err := env.Store.ContactsOfCustomer(ctx, tenant, customer, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range found {
			out = append(out, c.GetId())
		}
		slices.Sort(out)
		return out
	}
	want := []string{str(first, "id"), str(second, "id"), str(survivorContact, "id")}
	slices.Sort(want)
	if got := contactsOf(survivor); !slices.Equal(got, want) {
		t.Fatalf("the survivor's contacts after the merge: %v, want %v", got, want)
	}
	if got := contactsOf(merged); len(got) != 0 {
		t.Fatalf("the merged customer still has contacts %v", got)
	}
	if n, err := rdb.ZCard(ctx, scope.Key("ix", "contact", "customer_id", merged)).Result(); err != nil || n != 0 {
		t.Fatalf("the merged customer's index holds %d entries (%v), want none", n, err)
	}
	for _, d := range deals {
		if got := sys.OK(t, http.MethodGet, "/v1/opportunities/"+str(d, "id"), key, ""); str(got, "customerId") != survivor {
			t.Errorf("after the merge deal %s has customer %s, want the survivor %s", str(d, "id"), str(got, "customerId"), survivor)
		}
	}
	wantDeals := []string{str(deals[0], "id"), str(deals[1], "id")}
	slices.Sort(wantDeals)
	if got, err := rdb.ZRange(ctx, scope.Key("ix", "opportunity", "customer_id", survivor), 0, -1).Result(); err != nil || !slices.Equal(got, wantDeals) {
		t.Errorf("the survivor's deal index: %v (%v), want %v", got, err, wantDeals)
	}
	if n, err := rdb.ZCard(ctx, scope.Key("ix", "opportunity", "customer_id", merged)).Result(); err != nil || n != 0 {
		t.Errorf("the merged customer's deal index holds %d entries (%v), want none", n, err)
	}
	if after := sys.OK(t, http.MethodGet, "/v1/opportunities/"+str(otherDeal, "id"), key, ""); !reflect.DeepEqual(after, otherDealBefore) {
		t.Errorf("another person's deal changed in the merge: %v, was %v", after, otherDealBefore)
	}

	deliverTwice(&marketingv1.CustomerErased{CustomerId: survivor}, marketingv1.EventCustomerErased.Name)
	for _, c := range []map[string]any{first, second, survivorContact} {
		if r := sys.Do(t, http.MethodGet, "/v1/contacts/"+str(c, "id"), key, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET the erased contact %s: %d %s, want 404", str(c, "email"), r.Status, r.Body)
		}
	}
	if n := len(sys.events(t, tenant, salesv1.EventContactDeleted.Name)); n != 3 {
		t.Errorf("%d contact.deleted events, want 3 (one per contact, none for the redelivery)", n)
	}
	if after := sys.OK(t, http.MethodGet, "/v1/contacts/"+str(other, "id"), key, ""); !reflect.DeepEqual(after, otherBefore) {
		t.Fatalf("another person's contact changed: %v, was %v", after, otherBefore)
	}
	if got := ids(sys.OK(t, http.MethodGet, "/v1/contacts", key, ""), "contacts"); !slices.Equal(got, []string{str(other, "id")}) {
		t.Fatalf("contacts after the erase: %v, want the other person's alone", got)
	}
}
