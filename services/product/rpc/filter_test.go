package rpc_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestProductFilterForms: ListProducts and ListSubscriptions take the one AIP-160 grammar, field
// names in proto or JSON case, and refuse what their indexes cannot serve with INVALID_ARGUMENT
// naming the field.
func TestProductFilterForms(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	monthly := sys.createProduct(t, key, productBody("SKU-M", "Pro monthly", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	yearly := sys.createProduct(t, key, productBody("SKU-Y", "Basic yearly", "BILLING_PERIOD_YEARLY"))["id"].(string)

	list := func(filter string) (int, []string, string) {
		r := sys.Do(t, http.MethodGet, "/v1/products?filter="+url.QueryEscape(filter), key, nil)
		var ids []string
		if r.Status == http.StatusOK {
			ps, _ := r.JSON(t)["products"].([]any)
			for _, p := range ps {
				ids = append(ids, p.(map[string]any)["id"].(string))
			}
		}
		return r.Status, ids, string(r.Body)
	}
	for _, c := range []struct {
		filter string
		want   []string
	}{
		{`billingPeriod = BILLING_PERIOD_MONTHLY`, []string{monthly}},
		{`billing_period = BILLING_PERIOD_YEARLY`, []string{yearly}},
		{`displayName:"PRO*"`, []string{monthly}},
		{`display_name = "b*"`, []string{yearly}},
		{`active != false`, []string{yearly, monthly}},
		{`active != true`, nil},
		{`category = "crm"`, []string{yearly, monthly}},
		{`sku:"sku-m*"`, []string{monthly}},
		{`sku:"SKÜ*" AND billing_period = BILLING_PERIOD_YEARLY`, []string{yearly}},
		{`displayName:"monthly*" AND active = true`, []string{monthly}},
		{`displayName:"monthly*" AND active = false`, nil},
	} {
		if code, got, body := list(c.filter); code != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("filter %q: got %d %v %s, want %v", c.filter, code, got, body, c.want)
		}
	}

	for _, c := range []struct{ path, names string }{
		{"/v1/products?filter=" + url.QueryEscape(`tier = 1`), "tier"},
		{"/v1/products?filter=" + url.QueryEscape(`display_name = "Pro"`), "display_name"},
		{"/v1/products?filter=" + url.QueryEscape(`category = "crm" AND active = true`), "active cannot be combined with category"},
		{"/v1/products?filter=" + url.QueryEscape(`sku = "SKU-M"`), "sku"},
		{"/v1/products?filter=" + url.QueryEscape(`sku:"a*" AND display_name:"b*"`), "cannot be combined"},
		{"/v1/products?filter=" + url.QueryEscape(`billing_period != BILLING_PERIOD_YEARLY`), "billing_period"},
		{"/v1/subscriptions?filter=" + url.QueryEscape(`customerId = "x"`), "customer_id"},
		{"/v1/subscriptions?filter=" + url.QueryEscape(`status = SUBSCRIPTION_STATUS_ACTIVE AND product_id = "p"`), "product_id"},
		{"/v1/subscriptions?filter=" + url.QueryEscape(`status = SUBSCRIPTION_STATUS_ACTIVE AND status = SUBSCRIPTION_STATUS_CANCELED`), "status appears twice"},
	} {
		r := sys.Do(t, http.MethodGet, c.path, key, nil)
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "filter") || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("%s: got %d %s, want 400 with a violation on filter naming %q", c.path, r.Status, r.Body, c.names)
		}
	}
	if r := sys.Do(t, http.MethodGet, "/v1/subscriptions?filter="+url.QueryEscape(`customerId = "`+strings.ToUpper(monthly)+`" AND status = SUBSCRIPTION_STATUS_ACTIVE`), key, nil); r.Status != http.StatusOK {
		t.Errorf("subscriptions by customer and status: %d %s, want 200", r.Status, r.Body)
	}
}
