package product_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/commit"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

func TestOrderDeliveredConcurrentlyAppliesOnce(t *testing.T) {
	f := newFixture(t)
	monthly := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY})
	once := f.product(t, productSpec{sku: "O", period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME})
	customer := uuid.NewString()
	ev := f.orderEvent(t, customer, line(monthly, 4), line(once, 1), line(monthly, 2))

	const deliveries = 8
	errs := make([]error, deliveries)
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Go(func() { errs[i] = f.onSales(context.Background(), ev) })
	}
	wg.Wait()
	applied := 0
	for _, err := range errs {
		switch {
		case err == nil:
			applied++
		case !errors.Is(err, commit.ErrAlreadyApplied):
			t.Fatalf("delivery failed: %v", err)
		}
	}
	if applied != 1 {
		t.Fatalf("%d deliveries applied, want 1", applied)
	}
	subs := f.subscriptionsOf(t, customer)
	seats := map[string]int64{}
	for _, s := range subs {
		seats[s.GetProductId()] += s.GetQuantity()
	}
	if len(subs) != 3 || seats[monthly.GetId()] != 6 || seats[once.GetId()] != 1 {
		t.Fatalf("subscriptions = %v, want one per line: 4+2 seats monthly, 1 one-time", subs)
	}
	// The one-time line is an entitlement: it subscribes nobody, so it is no subscription event.
	if types := f.eventTypes(t); types["product.subscription.activated"] != 2 || types["product.entitlement.granted"] != 1 {
		t.Fatalf("%d activated and %d entitlement events, want 2 and 1", types["product.subscription.activated"], types["product.entitlement.granted"])
	}
}

func TestOrderOfUnknownProductGrantsNothing(t *testing.T) {
	f := newFixture(t)
	known := f.product(t, productSpec{sku: "K", period: productv1.BillingPeriod_BILLING_PERIOD_YEARLY})
	customer := uuid.NewString()
	ev := f.orderEvent(t, customer, line(known, 1), line(&productv1.Product{Id: uuid.NewString()}, 1))
	if err := f.onSales(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if subs := f.subscriptionsOf(t, customer); len(subs) != 1 || subs[0].GetProductId() != known.GetId() {
		t.Fatalf("subscriptions = %v, want only the known product's", subs)
	}
}
