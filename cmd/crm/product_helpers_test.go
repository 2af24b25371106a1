package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Product shortcuts for the tests that cross services (the customer 360, the cycle, orders placed
// through sales); the product service's own tests are in services/product/rpc.

// createProduct creates a product over REST and returns its JSON.
func (s *system) createProduct(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/products", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("create product: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func productBody(sku, name, period string) string {
	return fmt.Sprintf(`{"sku":%q,"displayName":%q,"category":"crm","billingPeriod":%q,
		"price":{"currencyCode":"EUR","units":"10","nanos":500000000},
		"additionalPrices":[{"currencyCode":"USD","units":"12"}],"productLine":"suite","tier":1,
		"features":["reports","pipeline"]}`, sku, name, period)
}

// waitFor polls get until ok, or fails the test after a deadline.
func waitFor[T any](t *testing.T, what string, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: reactions cross the bus on a loaded machine
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 30s", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscriptionsOf lists a customer's subscriptions over REST.
func (s *system) subscriptionsOf(t *testing.T, key, customer string) []map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/subscriptions?filter=customer_id%3D%22"+customer+"%22", key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list subscriptions: %d %s", r.status, r.body)
	}
	var out []map[string]any
	list, _ := r.json(t)["subscriptions"].([]any)
	for _, s := range list {
		out = append(out, s.(map[string]any))
	}
	return out
}
