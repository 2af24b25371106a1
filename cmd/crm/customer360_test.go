package main

import (
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// customer360World is one customer seen by every service: a converted lead with an account, an
// open deal, an order that became a subscription, and an open ticket.
type customer360World struct {
	customer, contact, account, ticket, openDeal string
}

func (s *system) buildCustomer360World(t *testing.T, key string) customer360World {
	t.Helper()
	product := str(s.createProduct(t, key, productBody("C360", "Suite", "BILLING_PERIOD_MONTHLY")), "id")
	lead := s.captureLead(t, key, `{"email":"whole@example.com","company":"Whole Co"}`)
	w := customer360World{customer: str(lead, "customerId")}
	conv := s.ok(t, http.MethodPost, "/v1/leads/"+str(lead, "id")+":convert", key, `{"opportunity":{"displayName":"Expansion"}}`)
	w.contact, w.account, w.openDeal = str(obj(conv, "contact"), "id"), str(obj(conv, "account"), "id"), str(obj(conv, "opportunity"), "id")
	s.ok(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":3}]}`, w.customer, product))
	waitFor(t, "the order's subscription", func() int { return len(s.subscriptionsOf(t, key, w.customer)) }, func(n int) bool { return n == 1 })
	w.ticket = str(s.ok(t, http.MethodPost, "/v1/tickets", key,
		fmt.Sprintf(`{"customerId":%q,"subject":"Cannot log in","priority":"TICKET_PRIORITY_HIGH"}`, w.customer)), "id")
	return w
}

var allScopes = []string{"sales.read", "sales.write", "marketing.read", "marketing.write", "product.read", "product.write", "support.read", "support.write"}

func TestCustomer360OverRESTAndGRPC(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", allScopes...)
	w := sys.buildCustomer360World(t, key)
	// Six NPS answers: the 360 shows the latest five, newest first, and the latest category.
	scores := []int{3, 10, 7, 9, 6, 8}
	for _, score := range scores {
		sys.ok(t, http.MethodPost, "/v1/npsResponses", key, fmt.Sprintf(`{"customerId":%q,"score":%d}`, w.customer, score))
	}

	c := sys.ok(t, http.MethodGet, "/v1/customers/"+w.customer, key, "")
	for _, section := range []string{"profile", "marketing", "deals", "product", "support"} {
		if got := str(obj(c, section), "status"); got != "SECTION_STATUS_AVAILABLE" {
			t.Errorf("section %s: status %s, want available: %v", section, got, obj(c, section))
		}
	}
	profile := obj(c, "profile")
	if str(obj(profile, "contact"), "id") != w.contact || str(obj(profile, "account"), "id") != w.account {
		t.Errorf("profile = %v, want contact %s of account %s", profile, w.contact, w.account)
	}
	if got := str(obj(obj(c, "marketing"), "lifecycle"), "customerId"); got != w.customer {
		t.Errorf("marketing section = %v, want the customer's lifecycle", obj(c, "marketing"))
	}
	deals := obj(c, "deals")
	if orders, _ := deals["recentOrders"].([]any); len(orders) != 1 {
		t.Errorf("recent orders = %v, want the one order", deals["recentOrders"])
	}
	if opps, _ := deals["openOpportunities"].([]any); len(opps) != 1 || str(opps[0].(map[string]any), "id") != w.openDeal {
		t.Errorf("open opportunities = %v, want %s", deals["openOpportunities"], w.openDeal)
	}
	if subs, _ := obj(c, "product")["subscriptions"].([]any); len(subs) != 1 || str(subs[0].(map[string]any), "quantity") != "3" {
		t.Errorf("product section = %v, want one subscription of 3 seats", obj(c, "product"))
	}
	if tickets, _ := obj(c, "support")["openTickets"].([]any); len(tickets) != 1 || str(tickets[0].(map[string]any), "id") != w.ticket {
		t.Errorf("support section = %v, want ticket %s open", obj(c, "support"), w.ticket)
	}
	var shown []int
	nps, _ := obj(c, "support")["npsResponses"].([]any)
	for _, a := range nps {
		score, _ := a.(map[string]any)["score"].(float64)
		shown = append(shown, int(score))
	}
	if want := []int{8, 6, 9, 7, 10}; fmt.Sprint(shown) != fmt.Sprint(want) || str(obj(c, "support"), "npsCategory") != "NPS_CATEGORY_PASSIVE" {
		t.Errorf("support section NPS: scores %v category %s, want %v (the latest five, newest first) and PASSIVE (8)",
			shown, str(obj(c, "support"), "npsCategory"), want)
	}
	// Traced like the other sections: sales' client call to support's ListNpsResponses, and
	// support's server span, in the trace of the 360's own server span. Server spans end just
	// after their response is written, so wait (bounded) for them.
	traced := func() bool {
		traces := map[string]map[string]bool{}
		for _, sp := range sys.spans.Ended() {
			id := sp.SpanContext().TraceID().String()
			if traces[id] == nil {
				traces[id] = map[string]bool{}
			}
			traces[id][sp.Name()+" "+sp.SpanKind().String()] = true
		}
		for _, names := range traces {
			if names["crm.sales.v1.SalesService/GetCustomer server"] &&
				names["crm.support.v1.SupportService/ListNpsResponses client"] && names["crm.support.v1.SupportService/ListNpsResponses server"] {
				return true
			}
		}
		return false
	}
	waitFor(t, "a trace holding the 360's GetCustomer server span with the ListNpsResponses client and server spans",
		traced, func(ok bool) bool { return ok })

	client, ctx := sys.sales(key)
	resp, err := client.GetCustomer(ctx, &salesv1.GetCustomerRequest{CustomerId: w.customer})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetCustomer(); got.GetProfile().GetContact().GetId() != w.contact || len(got.GetProduct().GetSubscriptions()) != 1 ||
		got.GetSupport().GetOpenTickets()[0].GetId() != w.ticket {
		t.Errorf("gRPC customer 360 = %v", got)
	}

	// Errors: a malformed id, a customer nobody knows, and a key without the read scope.
	sys.fails(t, http.MethodGet, "/v1/customers/not-a-uuid", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.fails(t, http.MethodGet, "/v1/customers/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
	if _, err := client.GetCustomer(ctx, &salesv1.GetCustomerRequest{CustomerId: "0190a0c1-0000-7000-8000-000000000000"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown customer over gRPC: %v, want NOT_FOUND", err)
	}
	_, writer := sys.newKey(t, "", "sales.write")
	sys.fails(t, http.MethodGet, "/v1/customers/"+w.customer, writer, "", http.StatusForbidden, "PERMISSION_DENIED")

	// A key with only sales.read sees its own sections, the others marked as not readable.
	_, salesOnly := sys.newKey(t, tenant, "sales.read")
	narrow := sys.ok(t, http.MethodGet, "/v1/customers/"+w.customer, salesOnly, "")
	if str(obj(narrow, "profile"), "status") != "SECTION_STATUS_AVAILABLE" || str(obj(narrow, "support"), "status") != "SECTION_STATUS_UNAVAILABLE" ||
		str(obj(narrow, "support"), "reason") != "the API key lacks the read scope of the service" {
		t.Errorf("customer 360 with sales.read only = %v", narrow)
	}
}

func TestCustomer360TenantIsolation(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", allScopes...)
	w := sys.buildCustomer360World(t, key)
	_, foreign := sys.newKey(t, "", allScopes...)
	sys.fails(t, http.MethodGet, "/v1/customers/"+w.customer, foreign, "", http.StatusNotFound, "NOT_FOUND")
	client, ctx := sys.sales(foreign)
	if _, err := client.GetCustomer(ctx, &salesv1.GetCustomerRequest{CustomerId: w.customer}); status.Code(err) != codes.NotFound {
		t.Errorf("foreign tenant over gRPC: %v, want NOT_FOUND", err)
	}
}

// TestCustomer360WithSupportDown runs every service but support, whose address leads nowhere: the
// 360 answers with the other sections and marks support unavailable.
func TestCustomer360WithSupportDown(t *testing.T) {
	sys := startSystem(t, func(c *processConfig) {
		dead := "127.0.0.1:1" // sales (and the gateway) dial a support that is not there
		c.ServiceAddrs["support"] = &dead
	})
	_, key := sys.newKey(t, "", allScopes...)
	product := str(sys.createProduct(t, key, productBody("DOWN", "Suite", "BILLING_PERIOD_MONTHLY")), "id")
	lead := sys.captureLead(t, key, `{"email":"partial@example.com"}`)
	customer := str(lead, "customerId")
	sys.ok(t, http.MethodPost, "/v1/leads/"+str(lead, "id")+":convert", key, `{}`)
	sys.ok(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, customer, product))
	waitFor(t, "the order's subscription", func() int { return len(sys.subscriptionsOf(t, key, customer)) }, func(n int) bool { return n == 1 })

	c := sys.ok(t, http.MethodGet, "/v1/customers/"+customer, key, "")
	if got := obj(c, "support"); str(got, "status") != "SECTION_STATUS_UNAVAILABLE" || str(got, "reason") != "the service is unavailable" {
		t.Errorf("support section = %v, want unavailable", got)
	}
	for _, section := range []string{"profile", "marketing", "deals", "product"} {
		if got := str(obj(c, section), "status"); got != "SECTION_STATUS_AVAILABLE" {
			t.Errorf("section %s: %s, want available", section, got)
		}
	}
	if subs, _ := obj(c, "product")["subscriptions"].([]any); len(subs) != 1 {
		t.Errorf("product section = %v, want the subscription", obj(c, "product"))
	}
}
