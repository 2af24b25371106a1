package product_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

func TestRenewalSweepUnderControlledClock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	monthly := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY})
	yearly := f.product(t, productSpec{sku: "Y", period: productv1.BillingPeriod_BILLING_PERIOD_YEARLY})
	customer := uuid.NewString()
	if err := f.onSales(ctx, f.orderEvent(t, customer, line(monthly, 1), line(monthly, 1), line(yearly, 1))); err != nil {
		t.Fatal(err)
	}
	subs := f.subscriptionsOf(t, customer)
	var renewing, canceling, annual *product.Subscription
	for _, s := range subs {
		switch {
		case s.GetProductId() == yearly.GetId():
			annual = s
		case renewing == nil:
			renewing = s
		default:
			canceling = s
		}
	}
	// Started 31 January: the first month ends on 28 February (clamped), not 3 March.
	if got, want := renewing.GetCurrentPeriodEndTime().AsTime(), time.Date(2026, 2, 28, 9, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("period end %v, want %v", got, want)
	}
	if _, err := f.subs.Cancel(ctx, f.tenant, canceling.GetId(), true, ""); err != nil {
		t.Fatal(err)
	}

	// Before the period ends, nothing is due.
	f.clock.Set(time.Date(2026, 2, 28, 9, 29, 0, 0, time.UTC))
	if r, e, err := f.subs.Sweep(ctx, f.tenant); err != nil || r != 0 || e != 0 {
		t.Fatalf("early sweep: renewed %d expired %d (%v), want none", r, e, err)
	}

	// Past it, concurrent sweeps renew one and expire the other, once.
	f.clock.Set(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	renewed, expired := 0, 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			r, e, err := f.subs.Sweep(ctx, f.tenant)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			renewed, expired = renewed+r, expired+e
			mu.Unlock()
		})
	}
	wg.Wait()
	if renewed != 1 || expired != 1 {
		t.Fatalf("concurrent sweeps renewed %d expired %d, want 1 and 1", renewed, expired)
	}
	got, _ := f.subs.Get(ctx, f.tenant, renewing.GetId())
	if want := time.Date(2026, 3, 31, 9, 30, 0, 0, time.UTC); got.GetRenewalCount() != 1 || !got.GetCurrentPeriodEndTime().AsTime().Equal(want) {
		t.Fatalf("renewed = %v, want renewal 1 ending %v (back on the 31st)", got, want)
	}
	gone, _ := f.subs.Get(ctx, f.tenant, canceling.GetId())
	if gone.GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_EXPIRED {
		t.Fatalf("canceled at period end = %v, want EXPIRED", gone)
	}
	if a, _ := f.subs.Get(ctx, f.tenant, annual.GetId()); a.GetRenewalCount() != 0 {
		t.Fatalf("yearly renewed early: %v", a)
	}
	ent, err := f.subs.CheckEntitlement(ctx, f.tenant, customer, monthly.GetId())
	if err != nil || !ent.GetEntitled() || ent.GetGrantId() != renewing.GetId() {
		t.Fatalf("entitlement = %v, %v; want the renewed subscription", ent, err)
	}
	ev := f.eventTypes(t)
	if ev["product.subscription.renewed"] != 1 || ev["product.subscription.expired"] != 1 || ev["product.subscription.canceled"] != 1 {
		t.Fatalf("events = %v, want one renewed, one expired, one canceled", ev)
	}

	// The timed sweep over the partition does the same for every tenant: a year on, the yearly one
	// and the monthly one renew.
	f.clock.Set(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC))
	if err := f.subs.SweepPartition(ctx, f.keys.Partition(f.tenant)); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.subs.Get(ctx, f.tenant, annual.GetId()); a.GetRenewalCount() != 1 {
		t.Fatalf("yearly after the partition sweep = %v, want renewed once", a)
	}
}

// TestOneTimeEntitlementIsNoSubscription: a one-time line gives an entitlement that no subscription
// method knows (not listed, got, canceled or renewed as one, so it emits no subscription event) and
// that CheckEntitlement honours.
func TestOneTimeEntitlementIsNoSubscription(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY})
	once := f.product(t, productSpec{sku: "O", period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME, features: []string{"setup"}})
	customer := uuid.NewString()
	if err := f.onSales(ctx, f.orderEvent(t, customer, line(p, 3), line(once, 2))); err != nil {
		t.Fatal(err)
	}
	subs, ents := f.subscriptionsOf(t, customer), f.entitlementsOf(t, customer)
	if len(subs) != 1 || subs[0].GetProductId() != p.GetId() {
		t.Fatalf("subscriptions = %v, want only the monthly one", subs)
	}
	if len(ents) != 1 || ents[0].GetProductId() != once.GetId() || ents[0].GetQuantity() != 2 || ents[0].GetSku() != "O" ||
		ents[0].GetGrantTime() == nil || ents[0].GetRevokeTime() != nil {
		t.Fatalf("entitlements = %v, want the one-time line's, in force", ents)
	}
	ent := ents[0].GetId()
	for name, err := range map[string]error{
		"get":           second(f.subs.Get(ctx, f.tenant, ent)),
		"batch get":     second(f.subs.GetMany(ctx, f.tenant, []string{subs[0].GetId(), ent})),
		"cancel now":    second(f.subs.Cancel(ctx, f.tenant, ent, false, "")),
		"cancel at end": second(f.subs.Cancel(ctx, f.tenant, ent, true, "")),
		"renew":         second(f.subs.Renew(ctx, f.tenant, ent, "")),
	} {
		if !errors.Is(err, product.ErrSubscriptionNotFound) {
			t.Errorf("%s of a one-time entitlement: %v, want %v", name, err, product.ErrSubscriptionNotFound)
		}
	}
	if types := f.eventTypes(t); types["product.subscription.canceled"]+types["product.subscription.renewed"] != 0 {
		t.Errorf("events %v, want no subscription canceled or renewed", types)
	}
	if check, err := f.subs.CheckEntitlement(ctx, f.tenant, customer, once.GetId()); err != nil || !check.GetEntitled() || check.GetGrantId() != ent {
		t.Fatalf("entitlement to the one-time product = %v, %v; want entitled by %s", check, err, ent)
	}
}

// second is the error of a call's two results.
func second[T any](_ T, err error) error { return err }

func TestCancelNowEndsEntitlement(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY})
	customer := uuid.NewString()
	if err := f.onSales(ctx, f.orderEvent(t, customer, line(p, 3))); err != nil {
		t.Fatal(err)
	}
	sub := f.subscriptionsOf(t, customer)[0]
	canceled, err := f.subs.Cancel(ctx, f.tenant, sub.GetId(), false, "")
	if err != nil || canceled.GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED {
		t.Fatalf("cancel now = %v, %v", canceled, err)
	}
	check, _ := f.subs.CheckEntitlement(ctx, f.tenant, customer, p.GetId())
	if check.GetEntitled() || check.GetReason() != product.ReasonCanceled {
		t.Fatalf("entitlement after cancel = %v, want SUBSCRIPTION_CANCELED", check)
	}
	if _, err := f.subs.Renew(ctx, f.tenant, sub.GetId(), ""); err == nil {
		t.Fatal("renew a canceled subscription: no error")
	}
	f.clock.Set(start.AddDate(1, 0, 0))
	if renewed, _, err := f.subs.Sweep(ctx, f.tenant); err != nil || renewed != 0 {
		t.Fatalf("sweep renewed %d (%v), want a canceled subscription left alone", renewed, err)
	}
}
