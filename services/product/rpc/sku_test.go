package rpc_test

import (
	"bytes"
	"net/http"
	"net/url"
	"sync"
	"testing"
)

// TestSKUsAreUniqueInAnyCase: a SKU differing only in case from a taken one is 409 ALREADY_EXISTS
// naming the owner, also when two such creates race (exactly one wins); the SKU search finds the
// product in any case, and the product keeps its SKU as written.
func TestSKUsAreUniqueInAnyCase(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	id := sys.createProduct(t, key, productBody("abc-1", "Lower", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	for _, sku := range []string{"ABC-1", "Abc-1"} {
		dup := sys.Do(t, http.MethodPost, "/v1/products", key, []byte(productBody(sku, "Upper", "BILLING_PERIOD_MONTHLY")))
		if dup.Status != http.StatusConflict || dup.ErrorStatus(t) != "ALREADY_EXISTS" || !bytes.Contains(dup.Body, []byte(id)) {
			t.Errorf("%s after abc-1: %d %s, want 409 naming %s", sku, dup.Status, dup.Body, id)
		}
	}
	for _, q := range []string{`sku:"ABC-1*"`, `sku:"Abc*"`} {
		list := sys.OK(t, http.MethodGet, "/v1/products?filter="+url.QueryEscape(q), key, "")
		products, _ := list["products"].([]any)
		if len(products) != 1 || products[0].(map[string]any)["id"] != id || products[0].(map[string]any)["sku"] != "abc-1" {
			t.Errorf("search %s = %v, want the product as written", q, list)
		}
	}

	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, sku := range []string{"Race-9", "RACE-9"} {
		wg.Go(func() {
			statuses[i] = sys.Do(t, http.MethodPost, "/v1/products", key, []byte(productBody(sku, "Race", "BILLING_PERIOD_MONTHLY"))).Status
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			won++
		case http.StatusConflict:
			lost++
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("two concurrent creates of one SKU in two cases: %v, want one 200 and one 409", statuses)
	}
}
