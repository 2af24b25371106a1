package product_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/product"
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
	if len(subs) != 2 || seats[monthly.GetId()] != 6 {
		t.Fatalf("subscriptions = %v, want one per recurring line: 4+2 seats monthly", subs)
	}
	if ents := f.entitlementsOf(t, customer); len(ents) != 1 || ents[0].GetProductId() != once.GetId() || ents[0].GetQuantity() != 1 {
		t.Fatalf("entitlements = %v, want the one-time line's", ents)
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

// TestSubscriptionAndEntitlementPagesPartTheGrants: subscriptions and one-time entitlements share
// the customer's index; each list pages through its own kind only, every grant once, whatever the
// page size and however the kinds interleave (a page may come back short, never losing its place).
func TestSubscriptionAndEntitlementPagesPartTheGrants(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	monthly := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY})
	once := f.product(t, productSpec{sku: "O", period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME})
	customer := uuid.NewString()
	// Runs of one-time lines longer than the reads a page makes, between recurring ones.
	var lines []*salesv1.OrderLine
	for _, recurring := range []bool{true, false, false, false, false, false, false, false, false, false, true, false, true, true, false} {
		if recurring {
			lines = append(lines, line(monthly, 1))
		} else {
			lines = append(lines, line(once, 1))
		}
	}
	if err := f.onSales(ctx, f.orderEvent(t, customer, lines...)); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 3, 50} {
		var subs, ents []string
		for _, s := range allPages(t, limit, func(r page.Request) (page.Page[*product.Subscription], error) {
			return f.subs.List(ctx, f.tenant, product.SubscriptionQuery{Index: product.SubscriptionIndex{CustomerID: customer}, Request: r})
		}) {
			subs = append(subs, s.GetId())
			if s.GetProductId() != monthly.GetId() {
				t.Fatalf("limit %d: a one-time grant listed as a subscription: %v", limit, s)
			}
		}
		for _, e := range allPages(t, limit, func(r page.Request) (page.Page[*productv1.Entitlement], error) {
			return f.subs.Entitlements(ctx, f.tenant, customer, r)
		}) {
			ents = append(ents, e.GetId())
			if e.GetProductId() != once.GetId() {
				t.Fatalf("limit %d: a subscription listed as an entitlement: %v", limit, e)
			}
		}
		if len(subs) != 4 || len(ents) != 11 || !slices.IsSortedFunc(subs, descending) || !slices.IsSortedFunc(ents, descending) ||
			len(slices.Compact(slices.Clone(subs))) != 4 || len(slices.Compact(slices.Clone(ents))) != 11 {
			t.Fatalf("limit %d: %d subscriptions %v and %d entitlements %v, want 4 and 11, each once, newest first", limit, len(subs), subs, len(ents), ents)
		}
	}
}

func descending(a, b string) int { return strings.Compare(b, a) }

// allPages reads every page of a list, limit items at a time, checking no page is longer.
func allPages[T any](t *testing.T, limit int, list func(page.Request) (page.Page[T], error)) []T {
	t.Helper()
	var out []T
	for r := (page.Request{Limit: limit}); ; {
		p, err := list(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > limit {
			t.Fatalf("limit %d: page of %d", limit, len(p.Items))
		}
		out = append(out, p.Items...)
		if r.After = p.Next; p.Next == "" {
			return out
		}
	}
}
