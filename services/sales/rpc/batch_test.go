package rpc_test

import (
	"fmt"
	"net/http"
	"testing"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

func TestBatchGetSalesResources(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, stranger := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "B1", "Batch", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	var accounts, contacts, deals, orders, activities []string
	for i := range 3 {
		account, contact, customer := sys.dealParties(t, key, fmt.Sprintf("batch%d@example.com", i))
		accounts, contacts = append(accounts, account), append(contacts, contact)
		deals = append(deals, str(sys.newDeal(t, key, contact, ""), "id"))
		orders = append(orders, str(sys.OK(t, http.MethodPost, "/v1/orders", key,
			fmt.Sprintf(`{"customerId":%q,"currencyCode":"USD","lines":[{"productId":%q,"quantity":1}]}`, customer, product)), "id"))
		activities = append(activities, str(sys.OK(t, http.MethodPost, "/v1/activities", key,
			fmt.Sprintf(`{"type":"ACTIVITY_TYPE_CALL","subject":"Call","ownerId":"ada","contactId":%q}`, contact)), "id"))
	}
	sys.CheckBatchGet(t, "accounts", key, stranger, accounts)
	sys.CheckBatchGet(t, "contacts", key, stranger, contacts)
	sys.CheckBatchGet(t, "opportunities", key, stranger, deals)
	sys.CheckBatchGet(t, "orders", key, stranger, orders)
	sys.CheckBatchGet(t, "activities", key, stranger, activities)
}

// TestBatchCreateContactsReportsEachItem: an e-mail the tenant has (or that an earlier item of the
// batch took) is ALREADY_EXISTS for that item alone; an unknown account likewise; the rest are
// written. A refused item carries its error alone, no contact.
func TestBatchCreateContactsReportsEachItem(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"known@example.com"}`)
	client, ctx := sys.sales(key)
	var reqs []*salesv1.CreateContactRequest
	for _, c := range []*salesv1.Contact{
		{Email: "new@example.com", GivenName: "New"},
		{Email: "KNOWN@example.com"},
		{Email: "twice@example.com"},
		{Email: "twice@example.com"},
		{Email: "orphan@example.com", AccountId: "01900000-0000-7000-8000-000000000000"},
	} {
		reqs = append(reqs, &salesv1.CreateContactRequest{Contact: c})
	}
	res, err := client.BatchCreateContacts(ctx, &salesv1.BatchCreateContactsRequest{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	var written, exists, other int
	for i, r := range res.GetResults() {
		if r.GetError() != nil && r.GetContact() != nil {
			t.Errorf("item %d: refused (%v) yet carries contact %v, which was never written", i, r.GetError().GetMessage(), r.GetContact())
		}
		switch {
		case r.GetContact() != nil && r.GetError() == nil:
			written++
			if r.GetContact().GetEmail() != reqs[i].GetContact().GetEmail() {
				t.Errorf("item %d: contact %v out of order", i, r.GetContact())
			}
		case r.GetError().GetCode() == 6: // ALREADY_EXISTS
			exists++
		default:
			other++
		}
	}
	if written != 2 || exists != 2 || other != 1 {
		t.Errorf("results %v: %d written, %d existing, %d other; want 2, 2 (the known e-mail, one of the twins), 1", res.GetResults(), written, exists, other)
	}
	list, err := client.ListContacts(ctx, &salesv1.ListContactsRequest{})
	if err != nil || len(list.GetContacts()) != 3 {
		t.Errorf("contacts after the batch: %d %v, want 3", len(list.GetContacts()), err)
	}
}

func TestExportAccountsContactsAndOrders(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", append(salesScopes, "sales.export")...)
	_, reader := sys.NewKey(t, tenant, "sales.read")
	_, stranger := sys.NewKey(t, "", "sales.export")
	product := sys.catalog.add(tenant, "X1", "Export", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	var accounts, contacts, orders, ada []string
	for i := range 4 {
		account, contact, customer := sys.dealParties(t, key, fmt.Sprintf("export%d@example.com", i))
		accounts, contacts = append(accounts, account), append(contacts, contact)
		orders = append(orders, str(sys.OK(t, http.MethodPost, "/v1/orders", key,
			fmt.Sprintf(`{"customerId":%q,"currencyCode":"USD","lines":[{"productId":%q,"quantity":1}]}`, customer, product)), "id"))
		if i%2 == 0 {
			ada = append(ada, str(sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"ada%d@example.com","givenName":"Adá"}`, i)), "id"))
		}
	}
	sys.CheckExport(t, "accounts", "", key, stranger, reader, accounts)
	sys.CheckExport(t, "contacts", "", key, stranger, reader, append(contacts, ada...))
	sys.CheckExport(t, "contacts", `displayName:"ada*"`, key, stranger, reader, ada)
	sys.CheckExport(t, "orders", "", key, stranger, reader, orders)
}
