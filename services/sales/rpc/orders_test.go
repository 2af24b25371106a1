package rpc_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

func TestDirectOrdersOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "REPEAT", "Repeat", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)
	campaign := uuid.Must(uuid.NewV7()).String()
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "again@example.com", Company: "Again", CampaignId: campaign})
	customer := lead.GetCustomerId()
	sys.OK(t, http.MethodPost, "/v1/leads/"+lead.GetId()+":convert", key, `{}`)

	before := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	first := sys.OK(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"currencyCode":"USD","lines":[{"productId":%q,"quantity":2}]}`, customer, product))
	if str(first, "customerId") != customer || str(first, "campaignId") != campaign || str(obj(first, "total"), "units") != "24" ||
		str(first, "currencyCode") != "USD" || str(first, "accountId") == "" {
		t.Fatalf("direct order = %v, want 2 x 12 USD for the customer, attributed to the lead's campaign", first)
	}
	second := sys.OK(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":1,"discountPercent":50}]}`, customer, product))
	if str(obj(second, "total"), "units") != "5" || obj(second, "total")["nanos"] != float64(250000000) {
		t.Fatalf("second order total = %v, want 5.25 EUR", obj(second, "total"))
	}
	_, _, stranger := sys.dealParties(t, key, "stranger@example.com")
	sys.OK(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, stranger, product))
	if n := len(sys.events(t, tenant, "sales.order.placed")); n != 3 {
		t.Fatalf("%d order placed events, want 3", n)
	}

	mine := sys.OK(t, http.MethodGet, "/v1/orders?filter="+url.QueryEscape(fmt.Sprintf(`customer_id = %q`, customer)), key, "")
	if got := ids(mine, "orders"); !slices.Equal(got, []string{str(second, "id"), str(first, "id")}) {
		t.Fatalf("the customer's orders = %v, want newest first", got)
	}
	timed := fmt.Sprintf(`customer_id = %q AND create_time >= %q`, customer, before)
	if got := ids(sys.OK(t, http.MethodGet, "/v1/orders?pageSize=1&filter="+url.QueryEscape(timed), key, ""), "orders"); len(got) != 1 {
		t.Fatalf("first page of the time range = %v", got)
	}
	future := fmt.Sprintf(`create_time > %q`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if got := sys.OK(t, http.MethodGet, "/v1/orders?filter="+url.QueryEscape(future), key, ""); got["orders"] != nil {
		t.Fatalf("orders after the future = %v", got)
	}
	if got := ids(sys.OK(t, http.MethodGet, "/v1/orders", key, ""), "orders"); len(got) != 3 {
		t.Fatalf("all orders = %v", got)
	}

	sys.Fails(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":"0190a0c1-0000-7000-8000-000000000000","lines":[{"productId":%q,"quantity":1}]}`, product),
		http.StatusNotFound, "NOT_FOUND")
	// An unknown product names the line's field, as a bad field does.
	unknown := sys.Do(t, http.MethodPost, "/v1/orders", key, []byte(fmt.Sprintf(
		`{"customerId":%q,"lines":[{"productId":%q,"quantity":1},{"productId":"0190a0c1-0000-7000-8000-000000000000","quantity":1}]}`, customer, product)))
	if unknown.Status != http.StatusBadRequest || unknown.ErrorStatus(t) != "FAILED_PRECONDITION" ||
		!slices.Equal(unknown.FieldViolations(t), []string{"order.lines[1].productId"}) {
		t.Fatalf("an order with an unknown product: %d %s, want 400 FAILED_PRECONDITION naming order.lines[1].productId", unknown.Status, unknown.Body)
	}
	sys.Fails(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[]}`, customer), http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodGet, "/v1/orders?filter="+url.QueryEscape(`total > 3`), key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodGet, "/v1/orders/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
}

func TestActivitiesOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	account, contact, _ := sys.dealParties(t, key, "act@example.com")
	deal := str(sys.newDeal(t, key, contact, ""), "id")

	call := sys.OK(t, http.MethodPost, "/v1/activities", key, fmt.Sprintf(`{"type":"ACTIVITY_TYPE_CALL","subject":"Intro call","ownerId":"ada","contactId":%q}`, contact))
	past := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	older := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	soon := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	late := sys.OK(t, http.MethodPost, "/v1/activities", key, fmt.Sprintf(`{"type":"ACTIVITY_TYPE_TASK","subject":"Send quote","ownerId":"ada","opportunityId":%q,"dueTime":%q}`, deal, past))
	later := sys.OK(t, http.MethodPost, "/v1/activities", key, fmt.Sprintf(`{"type":"ACTIVITY_TYPE_TASK","subject":"Chase","ownerId":"ada","accountId":%q,"dueTime":%q}`, account, older))
	sys.OK(t, http.MethodPost, "/v1/activities", key, fmt.Sprintf(`{"type":"ACTIVITY_TYPE_TASK","subject":"Not yet","ownerId":"ada","accountId":%q,"dueTime":%q}`, account, soon))
	sys.OK(t, http.MethodPost, "/v1/activities", key, fmt.Sprintf(`{"type":"ACTIVITY_TYPE_TASK","subject":"Bob's","ownerId":"bob","accountId":%q,"dueTime":%q}`, account, past))

	overdue := sys.OK(t, http.MethodGet, "/v1/owners/ada/overdueTasks", key, "")
	if got := ids(overdue, "activities"); !slices.Equal(got, []string{str(later, "id"), str(late, "id")}) {
		t.Fatalf("ada's overdue tasks = %v, want the longest overdue first", got)
	}
	page := sys.OK(t, http.MethodGet, "/v1/owners/ada/overdueTasks?pageSize=1", key, "")
	next := sys.OK(t, http.MethodGet, "/v1/owners/ada/overdueTasks?pageSize=1&pageToken="+url.QueryEscape(str(page, "nextPageToken")), key, "")
	if !slices.Equal(ids(next, "activities"), []string{str(late, "id")}) {
		t.Fatalf("second page of overdue tasks = %v", next)
	}
	sys.Fails(t, http.MethodGet, "/v1/owners/bob/overdueTasks?pageToken="+url.QueryEscape(str(page, "nextPageToken")), key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	done := sys.OK(t, http.MethodPost, "/v1/activities/"+str(later, "id")+":complete", key, `{}`)
	if str(done, "completeTime") == "" {
		t.Fatalf("completed task = %v", done)
	}
	if got := ids(sys.OK(t, http.MethodGet, "/v1/owners/ada/overdueTasks", key, ""), "activities"); !slices.Equal(got, []string{str(late, "id")}) {
		t.Fatalf("overdue after completing one = %v", got)
	}
	sys.Fails(t, http.MethodPost, "/v1/activities/"+str(later, "id")+":complete", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/activities/"+str(call, "id")+":complete", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")

	byContact := ids(sys.OK(t, http.MethodGet, "/v1/activities?filter="+url.QueryEscape(fmt.Sprintf(`contact_id = %q`, contact)), key, ""), "activities")
	byAccount := ids(sys.OK(t, http.MethodGet, "/v1/activities?filter="+url.QueryEscape(fmt.Sprintf(`account_id = %q`, account)), key, ""), "activities")
	if !slices.Equal(byContact, []string{str(call, "id")}) || len(byAccount) != 3 {
		t.Fatalf("activities of the contact %v, of the account %v", byContact, byAccount)
	}
	if got := sys.OK(t, http.MethodGet, "/v1/activities/"+str(call, "id"), key, ""); str(got, "subject") != "Intro call" {
		t.Fatalf("get activity = %v", got)
	}
	for name, body := range map[string]string{
		"task without due time": fmt.Sprintf(`{"type":"ACTIVITY_TYPE_TASK","subject":"x","ownerId":"ada","contactId":%q}`, contact),
		"no link":               `{"type":"ACTIVITY_TYPE_CALL","subject":"x","ownerId":"ada"}`,
		"unknown link":          `{"type":"ACTIVITY_TYPE_CALL","subject":"x","ownerId":"ada","contactId":"0190a0c1-0000-7000-8000-000000000000"}`,
		"no type":               fmt.Sprintf(`{"subject":"x","ownerId":"ada","contactId":%q}`, contact),
	} {
		t.Run(name, func(t *testing.T) {
			sys.Fails(t, http.MethodPost, "/v1/activities", key, body, http.StatusBadRequest, "INVALID_ARGUMENT")
		})
	}
	sys.Fails(t, http.MethodGet, "/v1/activities/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodGet, "/v1/owners/not%20ok/overdueTasks", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
}

// TestOrderForACustomerWithoutContact: marketing knows the person (a lead captured and never
// converted) but sales has no contact of theirs: the order is 400 FAILED_PRECONDITION
// CUSTOMER_HAS_NO_CONTACT naming the customer field and what to do, over REST and gRPC, and
// writes nothing; once the lead is converted the same order is placed.
func TestOrderForACustomerWithoutContact(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "NOCONTACT", "No contact", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "lead.only@example.com"})
	body := fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, lead.GetCustomerId(), product)

	r := sys.Do(t, http.MethodPost, "/v1/orders", key, []byte(body))
	if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" ||
		!slices.Equal(r.FieldViolations(t), []string{"order.customerId"}) ||
		!strings.Contains(string(r.Body), "CUSTOMER_HAS_NO_CONTACT") || !strings.Contains(string(r.Body), ":convert") {
		t.Fatalf("REST order for a customer without contact: %d %s, want 400 FAILED_PRECONDITION CUSTOMER_HAS_NO_CONTACT naming order.customerId and :convert",
			r.Status, r.Body)
	}
	c, ctx := sys.sales(key)
	_, err := c.CreateOrder(ctx, &salesv1.CreateOrderRequest{Order: &salesv1.Order{CustomerId: lead.GetCustomerId(),
		Lines: []*salesv1.OrderLine{{ProductId: product, Quantity: 1}}}})
	st := status.Convert(err)
	var reason string
	var fields []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if st.Code() != codes.FailedPrecondition || reason != "CUSTOMER_HAS_NO_CONTACT" || !slices.Equal(fields, []string{"order.customer_id"}) {
		t.Fatalf("gRPC order for a customer without contact: %v (reason %q, fields %v), want FailedPrecondition CUSTOMER_HAS_NO_CONTACT on order.customer_id",
			err, reason, fields)
	}
	if n := len(sys.events(t, tenant, "sales.order.placed")); n != 0 {
		t.Fatalf("%d orders placed by the refused calls, want none", n)
	}

	sys.OK(t, http.MethodPost, "/v1/leads/"+lead.GetId()+":convert", key, `{}`)
	if o := sys.OK(t, http.MethodPost, "/v1/orders", key, body); str(o, "customerId") != lead.GetCustomerId() {
		t.Fatalf("order after the conversion: %v", o)
	}
}

// Deleting the contact a customer's entry names passes the entry to the person's other contact:
// orders still find a contact; deleting that one too leaves the customer without.
func TestDeletingOneOfAPersonsContactsKeepsTheOther(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "TWOCONTACTS", "Two contacts", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	first := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"max@example.com"}`)
	customer := str(first, "customerId")
	sys.leads.mu.Lock()
	sys.leads.customers[record{tenant, "max.work@example.com"}] = customer // the person's second e-mail
	sys.leads.mu.Unlock()
	second := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"max.work@example.com"}`)
	if str(second, "customerId") != customer {
		t.Fatalf("second contact's customer %s, want %s", str(second, "customerId"), customer)
	}
	order := fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, customer, product)

	for _, c := range []map[string]any{second, first} { // the last written is the one the entry names
		if r := sys.Do(t, http.MethodDelete, "/v1/contacts/"+str(c, "id"), key, nil); r.Status != http.StatusOK {
			t.Fatalf("delete %s: %d %s", str(c, "email"), r.Status, r.Body)
		}
		r := sys.Do(t, http.MethodPost, "/v1/orders", key, []byte(order))
		if c["id"] == second["id"] && r.Status != http.StatusOK {
			t.Fatalf("order after deleting one of two contacts: %d %s, want 200 (the other contact %s is left)", r.Status, r.Body, str(first, "id"))
		}
		if c["id"] == first["id"] && (r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "CUSTOMER_HAS_NO_CONTACT")) {
			t.Fatalf("order after deleting both contacts: %d %s, want 400 CUSTOMER_HAS_NO_CONTACT", r.Status, r.Body)
		}
	}
}

// Two deletes at once of a person's two contacts leave neither, and no customer entry naming a
// deleted contact: each delete's heir is checked at the version read.
func TestDeletingBothContactsAtOnce(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "RACE", "Race", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	for round := range 5 {
		first := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"p%d@example.com"}`, round))
		customer := str(first, "customerId")
		sys.leads.mu.Lock()
		sys.leads.customers[record{tenant, fmt.Sprintf("p%d.work@example.com", round)}] = customer
		sys.leads.mu.Unlock()
		second := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"p%d.work@example.com"}`, round))
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, c := range []map[string]any{first, second} {
			wg.Go(func() { statuses[i] = sys.Do(t, http.MethodDelete, "/v1/contacts/"+str(c, "id"), key, nil).Status })
		}
		wg.Wait()
		if statuses[0] != http.StatusOK || statuses[1] != http.StatusOK {
			t.Fatalf("round %d: deletes answered %v, want both 200", round, statuses)
		}
		order := fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, customer, product)
		if r := sys.Do(t, http.MethodPost, "/v1/orders", key, []byte(order)); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "CUSTOMER_HAS_NO_CONTACT") {
			t.Fatalf("round %d: order after both deletes: %d %s, want 400 CUSTOMER_HAS_NO_CONTACT", round, r.Status, r.Body)
		}
	}
}

// A key without product.read cannot have lines priced: the call is 403 MISSING_SCOPE naming the
// scope, not a 503 asking for a retry that cannot help, and places nothing.
func TestOrderWithoutProductScopeIsForbidden(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, narrow := sys.NewKey(t, tenant, "sales.read", "sales.write", "marketing.read")
	product := sys.catalog.add(tenant, "NOSCOPE", "No scope", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "no.scope@example.com"})
	sys.OK(t, http.MethodPost, "/v1/leads/"+lead.GetId()+":convert", key, `{}`)
	body := fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, lead.GetCustomerId(), product)

	r := sys.Do(t, http.MethodPost, "/v1/orders", narrow, []byte(body))
	if r.Status != http.StatusForbidden || r.ErrorStatus(t) != "PERMISSION_DENIED" ||
		!strings.Contains(string(r.Body), "MISSING_SCOPE") || !strings.Contains(string(r.Body), "product.read") ||
		r.Header.Get("Retry-After") != "" {
		t.Fatalf("REST order without product.read: %d %s, want 403 MISSING_SCOPE naming product.read, no Retry-After", r.Status, r.Body)
	}
	c, ctx := sys.sales(narrow)
	_, err := c.CreateOrder(ctx, &salesv1.CreateOrderRequest{Order: &salesv1.Order{CustomerId: lead.GetCustomerId(),
		Lines: []*salesv1.OrderLine{{ProductId: product, Quantity: 1}}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("gRPC order without product.read: %v, want PermissionDenied", err)
	}
	if n := len(sys.events(t, tenant, "sales.order.placed")); n != 0 {
		t.Fatalf("%d orders placed by the refused calls, want none", n)
	}
}
