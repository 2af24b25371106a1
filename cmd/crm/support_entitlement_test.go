package main

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// TestSupportEntitlementThroughProduct opens tickets about a product against the real product
// service: a customer whose order made a subscription is entitled (the ticket names the grant, and
// the check is a traced gRPC call under the ticket's trace); another customer is refused with
// FAILED_PRECONDITION and nothing is written.
func TestSupportEntitlementThroughProduct(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", "support.read", "support.write", "product.read", "product.write")
	product := sys.createProduct(t, key, productBody("SUP-1", "Support suite", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	buyer, stranger := uuid.NewString(), uuid.NewString()
	sys.placeOrder(t, tenant, buyer, 1, &salesv1.OrderLine{ProductId: product, Quantity: 1})
	subs := waitFor(t, "subscription from the order", func() []map[string]any { return sys.subscriptionsOf(t, key, buyer) },
		func(s []map[string]any) bool { return len(s) == 1 })

	tk := sys.createTicket(t, key, `{"customerId":"`+buyer+`","productId":"`+product+`","subject":"Reports are empty"}`)
	if tk["entitlementId"] != subs[0]["id"] || tk["productId"] != product {
		t.Fatalf("ticket = %v, want entitlement %v", tk, subs[0]["id"])
	}
	var createTrace, checkTrace string
	for _, sp := range sys.spans.Ended() {
		switch sp.Name() {
		case "crm.support.v1.SupportService/CreateTicket":
			createTrace = sp.SpanContext().TraceID().String()
		case "crm.product.v1.ProductService/CheckEntitlement":
			if sp.SpanKind().String() == "server" {
				checkTrace = sp.SpanContext().TraceID().String()
			}
		}
	}
	if createTrace == "" || checkTrace != createTrace {
		t.Errorf("CheckEntitlement server span in trace %q, want the CreateTicket trace %q", checkTrace, createTrace)
	}

	before := sys.supportFootprint(t, tenant)
	r := sys.do(t, http.MethodPost, "/v1/tickets", key, []byte(`{"customerId":"`+stranger+`","productId":"`+product+`","subject":"x"}`))
	if r.status != http.StatusBadRequest || errorStatus(t, r) != "FAILED_PRECONDITION" || errorReason(t, r) != "NOT_ENTITLED" {
		t.Fatalf("not entitled: %d %s, want 400 FAILED_PRECONDITION NOT_ENTITLED", r.status, r.body)
	}
	if after := sys.supportFootprint(t, tenant); after != before {
		t.Fatalf("refused ticket wrote %d keys", after-before)
	}
	if n := len(sys.supportEvents(t, tenant, "support.ticket.created")); n != 1 {
		t.Fatalf("%d created events, want 1", n)
	}
}

// TestSupportEntitlementProductDown: with the product service unreachable, a ticket about a
// product is UNAVAILABLE (503) and nothing is written; a ticket without a product still opens.
func TestSupportEntitlementProductDown(t *testing.T) {
	sys := startSystem(t, func(c *processConfig) { *c.ServiceAddrs["product"] = "127.0.0.1:1" })
	tenant, key := sys.newKey(t, "", supportScopes...)
	r := sys.do(t, http.MethodPost, "/v1/tickets", key,
		[]byte(`{"customerId":"`+supportCustomer+`","productId":"`+uuid.NewString()+`","subject":"x"}`))
	if r.status != http.StatusServiceUnavailable || errorStatus(t, r) != "UNAVAILABLE" || errorReason(t, r) != "PRODUCT_UNAVAILABLE" {
		t.Fatalf("product down: %d %s, want 503 UNAVAILABLE PRODUCT_UNAVAILABLE", r.status, r.body)
	}
	if n := sys.supportFootprint(t, tenant); n != 0 {
		t.Fatalf("refused ticket wrote %d keys", n)
	}
	sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"No product"}`)
}

// errorReason returns the ErrorInfo reason of an AIP-193 error body.
func errorReason(t *testing.T, r response) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		if dm := d.(map[string]any); dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			reason, _ := dm["reason"].(string)
			return reason
		}
	}
	return ""
}
