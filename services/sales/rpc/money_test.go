package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// TestDealAmountsNeverWrap: the forecast counts in int64 nano units, so a deal just inside that
// range is counted exactly and one beyond it is refused, naming the amount, instead of wrapping
// the counters (18,446,744,074 units once counted as 0.29).
func TestDealAmountsNeverWrap(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	_, contact, _ := sys.dealParties(t, key, "big@example.com")

	sys.newDeal(t, key, contact, `,"amount":{"currencyCode":"EUR","units":"9223372036","nanos":854775807},"closeDate":"2026-08-01"`)
	client, ctx := sys.sales(key)
	resp, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026-08"})
	if err != nil || len(resp.GetForecast().GetRows()) != 1 {
		t.Fatalf("forecast: %v, %v; want one row", resp, err)
	}
	want := &typev1.Money{CurrencyCode: "EUR", Units: 9_223_372_036, Nanos: 854_775_807}
	if diff := cmp.Diff(want, resp.GetForecast().GetRows()[0].GetPipeline(), protocmp.Transform()); diff != "" {
		t.Errorf("pipeline (-want +got):\n%s", diff)
	}

	r := sys.Do(t, http.MethodPost, "/v1/opportunities", key,
		[]byte(`{"displayName":"Too big","contactId":"`+contact+`","currencyCode":"EUR","amount":{"currencyCode":"EUR","units":"18446744074"},"closeDate":"2026-08-01"}`))
	if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "opportunity.amount") {
		t.Fatalf("a deal beyond the forecast's range: %d %s, want 400 naming opportunity.amount", r.Status, r.Body)
	}
	again, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026-08"})
	if err != nil || !cmp.Equal(resp, again, protocmp.Transform()) {
		t.Errorf("forecast after the refused deal = %v, %v; want it unchanged", again, err)
	}
}

// TestOrderTotalsStayCountable: the revenue an order adds is counted in int64 nano units (value
// history, campaign attribution), so an order whose total is beyond them is refused before it is
// placed, naming the lines, and one just inside is placed.
func TestOrderTotalsStayCountable(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "HUGE", "Huge", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	sys.catalog.setPrice(tenant, product, &typev1.Money{CurrencyCode: "EUR", Units: 4_611_686_018})
	_, _, customer := sys.dealParties(t, key, "huge@example.com")
	order := func(quantity int) string {
		return fmt.Sprintf(`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":%d}]}`, customer, product, quantity)
	}
	placed := len(sys.events(t, tenant, "sales.order.placed"))
	r := sys.Do(t, http.MethodPost, "/v1/orders", key, []byte(order(3)))
	if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "order.lines") {
		t.Fatalf("an order of 13,835,058,054 units: %d %s, want 400 naming order.lines", r.Status, r.Body)
	}
	if n := len(sys.events(t, tenant, "sales.order.placed")); n != placed {
		t.Fatalf("the refused order placed %d orders", n-placed)
	}
	if got := sys.OK(t, http.MethodPost, "/v1/orders", key, order(2)); str(obj(got, "total"), "units") != "9223372036" {
		t.Fatalf("an order of 9,223,372,036 units = %v", got)
	}
}
