package rpc_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestProductTenantIsolation walks every product route with another tenant's key: the first
// tenant's resources are NOT_FOUND (never forbidden), invisible in lists, unpriceable, not
// entitling, and unchanged afterwards.
func TestProductTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	w := sys.productWorld(t)
	_, foreign := sys.NewKey(t, "", "product.read", "product.write")
	before := sys.Do(t, http.MethodGet, "/v1/subscriptions/"+w.sub, w.key, nil).Body
	productBefore := sys.Do(t, http.MethodGet, "/v1/products/"+w.basic, w.key, nil).Body

	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string // a substring of the body
	}{
		{"GetProduct", "GET", "/v1/products/" + w.basic, "", 404, "NOT_FOUND"},
		{"UpdateProduct", "PATCH", "/v1/products/" + w.basic + "?updateMask=displayName", `{"displayName":"mine"}`, 404, "NOT_FOUND"},
		{"ArchiveProduct", "POST", "/v1/products/" + w.basic + ":archive", `{}`, 404, "NOT_FOUND"},
		{"ListProducts", "GET", "/v1/products", "", 200, "{}"},
		{"QuoteLineItems", "POST", "/v1/products:quote", `{"currencyCode":"EUR","items":[{"productId":"` + w.basic + `","quantity":1}]}`, 400, "no such product"},
		{"CreateProduct with the same SKU", "POST", "/v1/products", productBody("BASIC", "Mine", "BILLING_PERIOD_MONTHLY"), 200, `"sku":"BASIC"`},
		{"CheckEntitlement", "GET", fmt.Sprintf("/v1/customers/%s/entitlements/%s", w.customer, w.basic), "", 404, "NOT_FOUND"},
		{"GetSubscription", "GET", "/v1/subscriptions/" + w.sub, "", 404, "NOT_FOUND"},
		{"ListSubscriptions", "GET", "/v1/subscriptions?filter=customer_id%3D%22" + w.customer + "%22", "", 200, "{}"},
		{"CancelSubscription", "POST", "/v1/subscriptions/" + w.sub + ":cancel", `{}`, 404, "NOT_FOUND"},
		{"RenewSubscription", "POST", "/v1/subscriptions/" + w.sub + ":renew", `{}`, 404, "NOT_FOUND"},
		{"SweepRenewals", "POST", "/v1/subscriptions:sweep", `{}`, 200, "{}"},
		{"RecordUsage", "POST", "/v1/subscriptions/" + w.sub + "/usageRecords", `{"feature":"reports","quantity":"1"}`, 404, "NOT_FOUND"},
		{"GetCustomerAdoption", "GET", "/v1/customers/" + w.customer + "/adoption", "", 404, "NOT_FOUND"},
		{"ListRecommendations", "GET", "/v1/customers/" + w.customer + "/recommendations", "", 404, "NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			r := sys.Do(t, tc.method, tc.path, foreign, body)
			if r.Status != tc.code || !strings.Contains(string(r.Body), tc.want) {
				t.Fatalf("%d %s, want %d with %s", r.Status, r.Body, tc.code, tc.want)
			}
		})
	}
	if after := sys.Do(t, http.MethodGet, "/v1/subscriptions/"+w.sub, w.key, nil).Body; string(after) != string(before) {
		t.Errorf("subscription changed by another tenant:\n%s\n%s", before, after)
	}
	if after := sys.Do(t, http.MethodGet, "/v1/products/"+w.basic, w.key, nil).Body; string(after) != string(productBefore) {
		t.Errorf("product changed by another tenant:\n%s\n%s", productBefore, after)
	}
}
