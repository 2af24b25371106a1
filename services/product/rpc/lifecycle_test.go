package rpc_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// productWorld is a tenant with a catalog and a customer who bought from it.
type productWorld struct {
	tenant, key, customer string
	basic, pro, addon     string // product ids: suite tiers 1 and 2, a one-time add-on
	sub, entitlement      string // the customer's subscription to basic and its add-on entitlement
}

func (s *system) productWorld(t *testing.T) productWorld {
	t.Helper()
	w := productWorld{customer: uuid.NewString()}
	w.tenant, w.key = s.NewKey(t, "", "product.read", "product.write")
	w.basic = s.createProduct(t, w.key, productBody("BASIC", "Suite Basic", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	w.pro = s.createProduct(t, w.key, `{"sku":"PRO","displayName":"Suite Pro","billingPeriod":"BILLING_PERIOD_MONTHLY",
		"price":{"currencyCode":"EUR","units":"30"},"productLine":"suite","tier":2,"features":["reports","pipeline","forecast"]}`)["id"].(string)
	w.addon = s.createProduct(t, w.key, productBody("ADDON", "Add-on", "BILLING_PERIOD_ONE_TIME"))["id"].(string)
	// Another customer's order makes the add-on a co-purchase of basic.
	s.placeOrder(t, w.tenant, uuid.NewString(), 1, &salesv1.OrderLine{ProductId: w.basic, Quantity: 1}, &salesv1.OrderLine{ProductId: w.addon, Quantity: 1})
	s.placeOrder(t, w.tenant, w.customer, 1, &salesv1.OrderLine{ProductId: w.basic, Quantity: 2, Recurring: true})
	subs := waitFor(t, "the customer's subscription", func() []map[string]any { return s.subscriptionsOf(t, w.key, w.customer) },
		func(l []map[string]any) bool { return len(l) == 1 })
	w.sub = subs[0]["id"].(string)
	return w
}

func TestProductSubscriptionLifecycleOverREST(t *testing.T) {
	sys := startSystem(t)
	w := sys.productWorld(t)

	rec := sys.Do(t, http.MethodGet, "/v1/customers/"+w.customer+"/recommendations", w.key, nil)
	if rec.Status != http.StatusOK {
		t.Fatalf("recommendations: %d %s", rec.Status, rec.Body)
	}
	recs := rec.JSON(t)["recommendations"].([]any)
	if len(recs) != 2 || recs[0].(map[string]any)["productId"] != w.addon || recs[0].(map[string]any)["score"] != float64(50) ||
		recs[1].(map[string]any)["productId"] != w.pro || recs[1].(map[string]any)["kind"] != "RECOMMENDATION_KIND_UPSELL" {
		t.Fatalf("recommendations = %s, want the add-on (cross-sell: 1 of 2 orders of BASIC, 50) then Pro (upsell, 50, fewer co-purchases)", rec.Body)
	}

	usage := sys.Do(t, http.MethodPost, "/v1/subscriptions/"+w.sub+"/usageRecords", w.key, []byte(`{"feature":"reports","quantity":"3","userId":"ada"}`))
	if usage.Status != http.StatusOK || usage.JSON(t)["subscriptionId"] != w.sub || usage.JSON(t)["time"] == nil {
		t.Fatalf("record usage: %d %s", usage.Status, usage.Body)
	}
	adoption := sys.Do(t, http.MethodGet, "/v1/customers/"+w.customer+"/adoption", w.key, nil)
	// recency 40 + breadth 30*1/2=15 + seats 30*1/2=15
	if a := adoption.JSON(t); adoption.Status != http.StatusOK || a["score"] != float64(70) || a["band"] != "ADOPTION_BAND_HEALTHY" ||
		a["featuresUsed"] != float64(1) || a["featuresAvailable"] != float64(2) || a["seats"] != "2" || a["activeUsers"] != "1" {
		t.Fatalf("adoption: %d %s", adoption.Status, adoption.Body)
	}

	for _, step := range []struct {
		name, verb, body string
		check            func(map[string]any) bool
	}{
		{"renew", "renew", `{}`, func(s map[string]any) bool { return s["renewalCount"] == float64(1) }},
		{"cancel at period end", "cancel", `{"atPeriodEnd":true}`, func(s map[string]any) bool {
			return s["status"] == "SUBSCRIPTION_STATUS_ACTIVE" && s["cancelAtPeriodEnd"] == true && s["renewalTime"] == nil
		}},
		{"renew withdraws the cancellation", "renew", `{}`, func(s map[string]any) bool {
			return s["renewalCount"] == float64(2) && s["cancelAtPeriodEnd"] == nil
		}},
		{"cancel now", "cancel", `{}`, func(s map[string]any) bool { return s["status"] == "SUBSCRIPTION_STATUS_CANCELED" }},
	} {
		r := sys.Do(t, http.MethodPost, "/v1/subscriptions/"+w.sub+":"+step.verb, w.key, []byte(step.body))
		if r.Status != http.StatusOK || !step.check(r.JSON(t)) {
			t.Fatalf("%s: %d %s", step.name, r.Status, r.Body)
		}
	}
	ent := sys.Do(t, http.MethodGet, fmt.Sprintf("/v1/customers/%s/entitlements/%s", w.customer, w.basic), w.key, nil)
	if ent.Status != http.StatusOK || ent.JSON(t)["entitled"] != nil || ent.JSON(t)["reason"] != "SUBSCRIPTION_CANCELED" {
		t.Fatalf("entitlement after cancel: %d %s", ent.Status, ent.Body)
	}
	sweep := sys.Do(t, http.MethodPost, "/v1/subscriptions:sweep", w.key, []byte(`{}`))
	if sweep.Status != http.StatusOK || sweep.JSON(t)["renewed"] != nil {
		t.Fatalf("sweep with nothing due: %d %s", sweep.Status, sweep.Body)
	}
	active := sys.Do(t, http.MethodGet, "/v1/subscriptions?filter=status%3DSUBSCRIPTION_STATUS_ACTIVE%20AND%20customer_id%3D%22"+w.customer+"%22", w.key, nil)
	if active.Status != http.StatusOK || active.JSON(t)["subscriptions"] != nil {
		t.Fatalf("active subscriptions after cancel: %d %s", active.Status, active.Body)
	}
}

func TestProductSubscriptionErrorsOverREST(t *testing.T) {
	sys := startSystem(t)
	w := sys.productWorld(t)
	_, readOnly := sys.NewKey(t, w.tenant, "product.read")
	missing := uuid.NewString()
	for _, tc := range []struct {
		name, method, path, key, body string
		code                          int
		status                        string
	}{
		{"get: bad id", "GET", "/v1/subscriptions/x", w.key, "", 400, "INVALID_ARGUMENT"},
		{"get: unknown", "GET", "/v1/subscriptions/" + missing, w.key, "", 404, "NOT_FOUND"},
		{"get: no key", "GET", "/v1/subscriptions/" + w.sub, "", "", 401, "UNAUTHENTICATED"},
		{"list: bad filter", "GET", "/v1/subscriptions?filter=seats%3D2", w.key, "", 400, "INVALID_ARGUMENT"},
		{"list: forged token", "GET", "/v1/subscriptions?pageToken=AAAAAAAAAAAAAAAAAAAAAAAAAA", w.key, "", 400, "INVALID_ARGUMENT"},
		{"cancel: read-only key", "POST", "/v1/subscriptions/" + w.sub + ":cancel", readOnly, `{}`, 403, "PERMISSION_DENIED"},
		{"cancel: unknown", "POST", "/v1/subscriptions/" + missing + ":cancel", w.key, `{}`, 404, "NOT_FOUND"},
		{"renew: unknown", "POST", "/v1/subscriptions/" + missing + ":renew", w.key, `{}`, 404, "NOT_FOUND"},
		{"renew: bad id", "POST", "/v1/subscriptions/x:renew", w.key, `{}`, 400, "INVALID_ARGUMENT"},
		{"sweep: read-only key", "POST", "/v1/subscriptions:sweep", readOnly, `{}`, 403, "PERMISSION_DENIED"},
		{"usage: unknown subscription", "POST", "/v1/subscriptions/" + missing + "/usageRecords", w.key, `{"feature":"reports","quantity":"1"}`, 404, "NOT_FOUND"},
		{"usage: unknown feature", "POST", "/v1/subscriptions/" + w.sub + "/usageRecords", w.key, `{"feature":"teleport","quantity":"1"}`, 400, "INVALID_ARGUMENT"},
		{"usage: zero quantity", "POST", "/v1/subscriptions/" + w.sub + "/usageRecords", w.key, `{"feature":"reports","quantity":"0"}`, 400, "INVALID_ARGUMENT"},
		{"usage: future", "POST", "/v1/subscriptions/" + w.sub + "/usageRecords", w.key, `{"feature":"reports","quantity":"1","time":"2999-01-01T00:00:00Z"}`, 400, "INVALID_ARGUMENT"},
		{"entitlement: bad customer", "GET", "/v1/customers/x/entitlements/" + w.basic, w.key, "", 400, "INVALID_ARGUMENT"},
		{"adoption: unknown customer", "GET", "/v1/customers/" + missing + "/adoption", w.key, "", 404, "NOT_FOUND"},
		{"adoption: bad customer", "GET", "/v1/customers/x/adoption", w.key, "", 400, "INVALID_ARGUMENT"},
		{"recommendations: unknown customer", "GET", "/v1/customers/" + missing + "/recommendations", w.key, "", 404, "NOT_FOUND"},
		{"recommendations: page too large", "GET", "/v1/customers/" + w.customer + "/recommendations?pageSize=1000", w.key, "", 400, "INVALID_ARGUMENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			r := sys.Do(t, tc.method, tc.path, tc.key, body)
			if r.Status != tc.code || r.ErrorStatus(t) != tc.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.code, tc.status)
			}
		})
	}
	// FAILED_PRECONDITION: the subscription's state does not allow the move.
	if r := sys.Do(t, http.MethodPost, "/v1/subscriptions/"+w.sub+":cancel", w.key, []byte(`{}`)); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{":cancel", ":renew", "/usageRecords"} {
		r := sys.Do(t, http.MethodPost, "/v1/subscriptions/"+w.sub+path, w.key, []byte(`{"feature":"reports","quantity":"1"}`))
		if path != "/usageRecords" {
			r = sys.Do(t, http.MethodPost, "/v1/subscriptions/"+w.sub+path, w.key, []byte(`{}`))
		}
		if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" {
			t.Errorf("%s on a canceled subscription: %d %s, want FAILED_PRECONDITION", path, r.Status, r.Body)
		}
	}
}

func TestProductSubscriptionsOverGRPC(t *testing.T) {
	sys := startSystem(t)
	w := sys.productWorld(t)
	client, ctx := sys.product(w.key)

	list, err := client.ListSubscriptions(ctx, &productv1.ListSubscriptionsRequest{Filter: `customer_id = "` + w.customer + `"`})
	if err != nil || len(list.GetSubscriptions()) != 1 || list.GetSubscriptions()[0].GetId() != w.sub {
		t.Fatalf("list = %v, %v", list, err)
	}
	if got, err := client.GetSubscription(ctx, &productv1.GetSubscriptionRequest{Id: w.sub}); err != nil || got.GetSubscription().GetQuantity() != 2 {
		t.Fatalf("get = %v, %v", got, err)
	}
	if ent, err := client.CheckEntitlement(ctx, &productv1.CheckEntitlementRequest{CustomerId: w.customer, ProductId: w.basic}); err != nil || !ent.GetEntitled() || ent.GetGrantId() != w.sub {
		t.Fatalf("entitlement = %v, %v", ent, err)
	}
	if _, err := client.RecordUsage(ctx, &productv1.RecordUsageRequest{SubscriptionId: w.sub, UsageRecord: &productv1.UsageRecord{Feature: "pipeline", Quantity: 1}}); err != nil {
		t.Fatal(err)
	}
	if a, err := client.GetCustomerAdoption(ctx, &productv1.GetCustomerAdoptionRequest{CustomerId: w.customer}); err != nil || a.GetAdoption().GetFeaturesUsed() != 1 {
		t.Fatalf("adoption = %v, %v", a, err)
	}
	if r, err := client.ListRecommendations(ctx, &productv1.ListRecommendationsRequest{CustomerId: w.customer, PageSize: 1}); err != nil || len(r.GetRecommendations()) != 1 {
		t.Fatalf("recommendations = %v, %v", r, err)
	}
	if r, err := client.RenewSubscription(ctx, &productv1.RenewSubscriptionRequest{Id: w.sub}); err != nil || r.GetSubscription().GetRenewalCount() != 1 {
		t.Fatalf("renew = %v, %v", r, err)
	}
	if r, err := client.SweepRenewals(ctx, &productv1.SweepRenewalsRequest{}); err != nil || r.GetRenewed() != 0 {
		t.Fatalf("sweep = %v, %v", r, err)
	}
	if r, err := client.CancelSubscription(ctx, &productv1.CancelSubscriptionRequest{Id: w.sub}); err != nil || r.GetSubscription().GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED {
		t.Fatalf("cancel = %v, %v", r, err)
	}
	for _, call := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"cancel again", second(client.CancelSubscription(ctx, &productv1.CancelSubscriptionRequest{Id: w.sub})), codes.FailedPrecondition},
		{"renew canceled", second(client.RenewSubscription(ctx, &productv1.RenewSubscriptionRequest{Id: w.sub})), codes.FailedPrecondition},
		{"get unknown", second(client.GetSubscription(ctx, &productv1.GetSubscriptionRequest{Id: uuid.NewString()})), codes.NotFound},
		{"usage invalid", second(client.RecordUsage(ctx, &productv1.RecordUsageRequest{SubscriptionId: w.sub})), codes.InvalidArgument},
		{"adoption unknown", second(client.GetCustomerAdoption(ctx, &productv1.GetCustomerAdoptionRequest{CustomerId: uuid.NewString()})), codes.NotFound},
		{"recommendations unknown", second(client.ListRecommendations(ctx, &productv1.ListRecommendationsRequest{CustomerId: uuid.NewString()})), codes.NotFound},
		{"list bad filter", second(client.ListSubscriptions(ctx, &productv1.ListSubscriptionsRequest{Filter: "status = NOPE"})), codes.InvalidArgument},
	} {
		if status.Code(call.err) != call.want {
			t.Errorf("%s: %v, want %v", call.name, call.err, call.want)
		}
	}
}
