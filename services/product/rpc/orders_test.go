package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// placeOrder appends a real "sales.order.placed" envelope to the sales stream of the tenant's
// partition, as the sales service does, times times (a redelivery), and returns the order.
func (s *system) placeOrder(t *testing.T, tenant, customer string, times int, lines ...*salesv1.OrderLine) *salesv1.Order {
	t.Helper()
	ctx := context.Background()
	order := &salesv1.Order{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Lines: lines}
	_, data, err := events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}.
		Envelope(ctx, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: order}), tenant, customer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range times {
		if err := commit.New().Append(s.Suite.Deps.Keys.Scope("sales", tenant).Stream(), data).Run(ctx, s.Suite.Redis); err != nil {
			t.Fatal(err)
		}
	}
	return order
}

func (s *system) subscriptionsOf(t *testing.T, key, customer string) []map[string]any {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v1/subscriptions?filter=customer_id%3D%22"+customer+"%22", key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list subscriptions: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	list, _ := r.JSON(t)["subscriptions"].([]any)
	for _, s := range list {
		out = append(out, s.(map[string]any))
	}
	return out
}

func TestOrderPlacedCreatesSubscriptionsOnce(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "product.read", "product.write")
	monthly := sys.createProduct(t, key, productBody("M", "Monthly", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	yearly := sys.createProduct(t, key, productBody("Y", "Yearly", "BILLING_PERIOD_YEARLY"))["id"].(string)
	once := sys.createProduct(t, key, productBody("O", "Once", "BILLING_PERIOD_ONE_TIME"))["id"].(string)
	customer := uuid.NewString()

	// Delivered twice: the second delivery changes nothing.
	order := sys.placeOrder(t, tenant, customer, 2,
		&salesv1.OrderLine{ProductId: monthly, Quantity: 5, Recurring: true},
		&salesv1.OrderLine{ProductId: yearly, Quantity: 2, Recurring: true},
		&salesv1.OrderLine{ProductId: once, Quantity: 1})
	subs := waitFor(t, "subscriptions", func() []map[string]any { return sys.subscriptionsOf(t, key, customer) },
		func(s []map[string]any) bool { return len(s) >= 2 })
	// A later order proves the redelivered one was handled (the partition is read in order).
	later := uuid.NewString()
	sys.placeOrder(t, tenant, later, 1, &salesv1.OrderLine{ProductId: monthly, Quantity: 1})
	waitFor(t, "the later order", func() int { return len(sys.subscriptionsOf(t, key, later)) }, func(n int) bool { return n >= 1 })
	// The one-time line is an entitlement, no subscription.
	if subs = sys.subscriptionsOf(t, key, customer); len(subs) != 2 {
		t.Fatalf("customer has %d subscriptions after a redelivered order, want 2: %v", len(subs), subs)
	}
	if all := sys.OK(t, http.MethodGet, "/v1/subscriptions", key, ""); len(all["subscriptions"].([]any)) != 3 {
		t.Fatalf("the tenant's subscriptions = %v, want the 3 recurring ones", all)
	}
	ents := sys.OK(t, http.MethodGet, "/v1/customers/"+customer+"/entitlements", key, "")["entitlements"].([]any)
	if len(ents) != 1 {
		t.Fatalf("customer's entitlements = %v, want the one-time line's", ents)
	}
	ent := ents[0].(map[string]any)
	if ent["productId"] != once || ent["orderId"] != order.GetId() || ent["quantity"] != "1" || ent["sku"] != "O" || ent["grantTime"] == nil ||
		ent["revokeTime"] != nil || ent["renewalTime"] != nil || ent["status"] != nil {
		t.Errorf("entitlement = %v", ent)
	}
	// No subscription method knows it: not found, so not canceled or renewed either.
	entID := ent["id"].(string)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/subscriptions/" + entID, ""},
		{http.MethodGet, "/v1/subscriptions:batchGet?ids=" + entID, ""},
		{http.MethodPost, "/v1/subscriptions/" + entID + ":cancel", "{}"},
		{http.MethodPost, "/v1/subscriptions/" + entID + ":cancel", `{"atPeriodEnd":true}`},
		{http.MethodPost, "/v1/subscriptions/" + entID + ":renew", "{}"},
	} {
		sys.Fails(t, r.method, r.path, key, r.body, http.StatusNotFound, "NOT_FOUND")
	}
	if l := sys.OK(t, http.MethodGet, "/v1/customers/"+uuid.NewString()+"/entitlements", key, ""); len(l) != 0 {
		t.Errorf("entitlements of a customer without any = %v, want {}", l)
	}
	details := sys.Fails(t, http.MethodGet, "/v1/customers/not-a-uuid/entitlements", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	if !strings.Contains(fmt.Sprint(details), "customerId") {
		t.Errorf("a bad customer id's details = %v, want a violation of customerId", details)
	}
	byProduct := map[string]map[string]any{}
	for _, s := range subs {
		byProduct[s["productId"].(string)] = s
		if s["orderId"] != order.GetId() || s["status"] != "SUBSCRIPTION_STATUS_ACTIVE" {
			t.Errorf("subscription %v", s)
		}
	}
	if m := byProduct[monthly]; m["quantity"] != "5" || m["renewalTime"] == nil || m["billingPeriod"] != "BILLING_PERIOD_MONTHLY" {
		t.Errorf("monthly subscription = %v", m)
	}
	start, _ := time.Parse(time.RFC3339Nano, byProduct[yearly]["startTime"].(string))
	end, _ := time.Parse(time.RFC3339Nano, byProduct[yearly]["currentPeriodEndTime"].(string))
	if !end.Equal(start.AddDate(1, 0, 0)) {
		t.Errorf("yearly period %v .. %v, want one year", start, end)
	}

	for _, tc := range []struct {
		customer, product string
		code              int
		want              string
	}{
		{customer, monthly, 200, `"entitled":true`},
		{customer, once, 200, entID}, // the entitlement grants it
		{uuid.NewString(), once, 200, `"reason":"NO_SUBSCRIPTION"`},
		{customer, uuid.NewString(), 404, `"NOT_FOUND"`},
	} {
		r := sys.Do(t, http.MethodGet, fmt.Sprintf("/v1/customers/%s/entitlements/%s", tc.customer, tc.product), key, nil)
		if r.Status != tc.code || !strings.Contains(string(r.Body), tc.want) {
			t.Errorf("entitlement to %s: %d %s, want %s", tc.product, r.Status, r.Body, tc.want)
		}
	}
	got := sys.Do(t, http.MethodGet, "/v1/subscriptions/"+byProduct[monthly]["id"].(string), key, nil)
	if got.Status != http.StatusOK || got.JSON(t)["id"] != byProduct[monthly]["id"] {
		t.Errorf("get subscription: %d %s", got.Status, got.Body)
	}
}
