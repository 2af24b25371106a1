package rpc_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestSalesFilterForms: the sales lists take the one AIP-160 grammar, field names in proto or
// JSON case, and refuse what their indexes cannot serve with INVALID_ARGUMENT naming the field.
func TestSalesFilterForms(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	// U+FFFD is a character like any other: a name holding it is listed by its prefix.
	cafe := str(sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Caf\uFFFD Noir","ownerId":"ada"}`), "id")
	account, contact, _ := sys.dealParties(t, key, "deal@example.com")
	deal := str(sys.newDeal(t, key, contact, `,"amount":{"currencyCode":"EUR","units":"1500"},"closeDate":"2026-08-15"`), "id")

	for _, c := range []struct {
		path, list string
		want       []string
	}{
		{"/v1/accounts?filter=" + url.QueryEscape("display_name = \"caf\uFFFD*\""), "accounts", []string{cafe}},
		{"/v1/accounts?filter=" + url.QueryEscape("displayName:\"CAF\uFFFD N*\""), "accounts", []string{cafe}},
		{"/v1/accounts?filter=" + url.QueryEscape(`ownerId = "ada"`), "accounts", []string{cafe}},
		{"/v1/contacts?filter=" + url.QueryEscape(fmt.Sprintf(`accountId = %q`, strings.ToUpper(account))), "contacts", []string{contact}},
		{"/v1/contacts?filter=" + url.QueryEscape(`email = "Deal@Example.com"`), "contacts", []string{contact}},
		{"/v1/opportunities?filter=" + url.QueryEscape(`amount >= 1000 AND amount < 2000`), "opportunities", []string{deal}},
		{"/v1/opportunities?filter=" + url.QueryEscape(`amount > 1500`), "opportunities", nil},
		{"/v1/opportunities?filter=" + url.QueryEscape(`closeDate <= "2026-08-15" AND closeDate > "2026-08-14"`), "opportunities", []string{deal}},
		{"/v1/opportunities?filter=" + url.QueryEscape(fmt.Sprintf(`account_id = %q`, account)), "opportunities", []string{deal}},
		{"/v1/activities?filter=" + url.QueryEscape(fmt.Sprintf(`opportunityId = %q`, deal)), "activities", nil},
	} {
		r := sys.Do(t, http.MethodGet, c.path, key, nil)
		var got []string
		if r.Status == http.StatusOK {
			got = ids(r.JSON(t), c.list)
		}
		if r.Status != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %d %v %s, want %v", c.path, r.Status, got, r.Body, c.want)
		}
	}

	for _, c := range []struct{ path, names string }{
		{"/v1/accounts?filter=" + url.QueryEscape(`display_name = "Caf"`), "display_name"},
		{"/v1/accounts?filter=" + url.QueryEscape(`display_name = "a\x00*"`), "display_name"},
		{"/v1/accounts?filter=" + url.QueryEscape(`owner_id = "ada" AND industry = "x"`), "industry cannot be combined with owner_id"},
		{"/v1/contacts?filter=" + url.QueryEscape(`phone = "123"`), "phone"},
		{"/v1/opportunities?filter=" + url.QueryEscape(`amount > 1 AND stage = "X"`), "stage cannot be combined with amount"},
		{"/v1/opportunities?filter=" + url.QueryEscape(`amount != 1500`), "amount"},
		{"/v1/opportunities?filter=" + url.QueryEscape(`amount > 15.5`), "amount"},
		{"/v1/orders?filter=" + url.QueryEscape(`create_time = "2026-01-01T00:00:00Z"`), "create_time"},
		{"/v1/orders?filter=" + url.QueryEscape(`customer_id = "x"`), "customer_id"},
		{"/v1/activities?filter=" + url.QueryEscape(`contact_id = "a" OR account_id = "b"`), "OR"},
	} {
		r := sys.Do(t, http.MethodGet, c.path, key, nil)
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "filter") || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("%s: got %d %s, want 400 with a violation on filter naming %q", c.path, r.Status, r.Body, c.names)
		}
	}
}
