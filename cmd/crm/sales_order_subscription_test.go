package main

import (
	"fmt"
	"net/http"
	"testing"
)

// TestSalesOrderBecomesSubscription goes across services: a direct order placed through the sales
// service (priced by QuoteLineItems) reaches the product service as sales.order.placed.
func TestSalesOrderBecomesSubscription(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", "product.read", "product.write", "sales.read", "sales.write")
	monthly := sys.createProduct(t, key, productBody("M", "Monthly", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	contact := sys.do(t, http.MethodPost, "/v1/contacts", key, []byte(`{"email":"ada@example.com"}`))
	if contact.status != http.StatusOK {
		t.Fatalf("create contact: %d %s", contact.status, contact.body)
	}
	customer := contact.json(t)["customerId"].(string)
	order := sys.do(t, http.MethodPost, "/v1/orders", key, fmt.Appendf(nil,
		`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":"3","discountPercent":10}]}`, customer, monthly))
	if order.status != http.StatusOK {
		t.Fatalf("create order: %d %s", order.status, order.body)
	}
	// 3 x 10.50 less 10 % = 28.35, priced by the product service.
	if total := order.json(t)["total"].(map[string]any); total["units"] != "28" || total["nanos"] != float64(350000000) {
		t.Fatalf("order total = %v, want 28.35", total)
	}
	subs := waitFor(t, "the subscription", func() []map[string]any { return sys.subscriptionsOf(t, key, customer) },
		func(s []map[string]any) bool { return len(s) > 0 })
	if len(subs) != 1 || subs[0]["quantity"] != "3" || subs[0]["orderId"] != order.json(t)["id"] {
		t.Fatalf("subscriptions = %v, want one of 3 seats from order %v", subs, order.json(t)["id"])
	}
}
