package product_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// subscribe places an order of one line and returns the subscription it created.
func (f *fixture) subscribe(t *testing.T, customer string, p *product.Product, seats int64) *product.Subscription {
	t.Helper()
	if err := f.onSales(context.Background(), f.orderEvent(t, customer, line(p, seats))); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.subscriptionsOf(t, customer) {
		if s.GetProductId() == p.GetId() {
			return s
		}
	}
	t.Fatal("no subscription")
	return nil
}

func TestAdoptionScoreAndBandOnUsageHistory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "S", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY,
		features: []string{"a", "b", "c", "d"}})
	customer := uuid.NewString()
	sub := f.subscribe(t, customer, p, 2)

	a, err := f.usage.Adoption(ctx, f.tenant, customer)
	if err != nil || a.GetScore() != 0 || a.GetBand() != productv1.AdoptionBand_ADOPTION_BAND_AT_RISK || a.GetFeaturesAvailable() != 4 {
		t.Fatalf("adoption before any use = %v, %v; want 0 AT_RISK of 4 features", a, err)
	}
	use := func(feature, user string, at time.Time) {
		t.Helper()
		if _, err := f.usage.Record(ctx, f.tenant, sub.GetId(), &product.UsageRecord{
			Feature: feature, Quantity: 1, UserId: user, Time: timestamppb.New(at)}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name          string
		clock, at     time.Time
		feature, user string
		score         int32
		band          productv1.AdoptionBand
		bandChanges   int
	}{
		// recency 40 + breadth 30*1/4=7 + seats 30*1/2=15
		{"first use", start, start, "a", "u1", 62, productv1.AdoptionBand_ADOPTION_BAND_NEEDS_ATTENTION, 1},
		// 40 + 30*2/4=15 + 30*2/2=30
		{"second user", start, start, "b", "u2", 85, productv1.AdoptionBand_ADOPTION_BAND_HEALTHY, 2},
		// 40 + 30*3/4=22 + 30: same band, no event
		{"third feature", start, start, "c", "u1", 92, productv1.AdoptionBand_ADOPTION_BAND_HEALTHY, 2},
		// 20 days on, in February: recency 40*10/23=17, breadth 22, no user yet this month
		{"late record of an old use", start.AddDate(0, 0, 20), start, "a", "", 39, productv1.AdoptionBand_ADOPTION_BAND_AT_RISK, 3},
	}
	for _, st := range steps {
		f.clock.Set(st.clock)
		use(st.feature, st.user, st.at)
		a, err := f.usage.Adoption(ctx, f.tenant, customer)
		if err != nil || a.GetScore() != st.score || a.GetBand() != st.band {
			t.Fatalf("%s: adoption = %v, %v; want %d %v", st.name, a, err, st.score, st.band)
		}
		if n := f.eventTypes(t)[productv1.EventAdoptionChanged.Name]; n != st.bandChanges {
			t.Fatalf("%s: %d adoption.changed events, want %d", st.name, n, st.bandChanges)
		}
	}
}

func TestConcurrentUsageAnnouncesABandChangeOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "S", period: productv1.BillingPeriod_BILLING_PERIOD_YEARLY, features: []string{"a"}})
	customer := uuid.NewString()
	sub := f.subscribe(t, customer, p, 1)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := f.usage.Record(ctx, f.tenant, sub.GetId(), &product.UsageRecord{Feature: "a", Quantity: int64(i + 1), UserId: "u"})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.eventTypes(t)[productv1.EventAdoptionChanged.Name]; n != 1 {
		t.Fatalf("%d adoption.changed events for one band change, want 1", n)
	}
	total, err := f.rdb.HGet(ctx, f.keys.Scope("product", f.tenant).Key("usage", "subscription", sub.GetId(), start.Format("2006-01")), "a").Int()
	if err != nil || total != 36 {
		t.Fatalf("usage counter = %d (%v), want 1+2+...+8 = 36", total, err)
	}
}

func TestRecordUsageRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "S", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, features: []string{"a"}})
	sub := f.subscribe(t, uuid.NewString(), p, 1)
	for _, tc := range []struct {
		name string
		rec  *product.UsageRecord
		want error
	}{
		{"unknown feature", &product.UsageRecord{Feature: "zzz", Quantity: 1}, product.ErrUnknownFeature},
		{"future", &product.UsageRecord{Feature: "a", Quantity: 1, Time: timestamppb.New(start.Add(time.Hour))}, product.ErrFutureUsage},
	} {
		if _, err := f.usage.Record(ctx, f.tenant, sub.GetId(), tc.rec); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := f.subs.Cancel(ctx, f.tenant, sub.GetId(), false, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.usage.Record(ctx, f.tenant, sub.GetId(), &product.UsageRecord{Feature: "a", Quantity: 1}); !errors.Is(err, product.ErrSubscriptionEnded) {
		t.Errorf("usage on a canceled subscription: %v, want %v", err, product.ErrSubscriptionEnded)
	}
}

// TestAdoptionFadesWithoutUsage: the timed rescoring moves the band as recency fades and the month's
// users reset, announces each change once, and stops once nothing can change any more.
func TestAdoptionFadesWithoutUsage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.product(t, productSpec{sku: "S", period: productv1.BillingPeriod_BILLING_PERIOD_YEARLY, features: []string{"a", "b"}})
	customer := uuid.NewString()
	sub := f.subscribe(t, customer, p, 1)
	for _, feature := range []string{"a", "b"} {
		if _, err := f.usage.Record(ctx, f.tenant, sub.GetId(), &product.UsageRecord{Feature: feature, Quantity: 1, UserId: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	partition := f.keys.Partition(f.tenant)
	schedule := f.keys.Partitioned("product", partition, "adoption-rescore-due")
	member := f.tenant + "/" + customer
	for _, st := range []struct {
		name       string
		clock      time.Time
		band       productv1.AdoptionBand
		changes    int
		onSchedule bool
	}{
		// 40 + 30 + 30
		{"a day on", start.AddDate(0, 0, 1), productv1.AdoptionBand_ADOPTION_BAND_HEALTHY, 1, true},
		// February, no user yet: 40*10/23=17 + 30 + 0
		{"20 days on", start.AddDate(0, 0, 20), productv1.AdoptionBand_ADOPTION_BAND_NEEDS_ATTENTION, 2, true},
		{"again, same day", start.AddDate(0, 0, 20), productv1.AdoptionBand_ADOPTION_BAND_NEEDS_ATTENTION, 2, true},
		// nothing left: 0
		{"40 days on", start.AddDate(0, 0, 40), productv1.AdoptionBand_ADOPTION_BAND_AT_RISK, 3, false},
	} {
		f.clock.Set(st.clock)
		if err := f.usage.RescorePartition(ctx, partition); err != nil {
			t.Fatal(err)
		}
		if n := f.eventTypes(t)[productv1.EventAdoptionChanged.Name]; n != st.changes {
			t.Fatalf("%s: %d adoption.changed events, want %d", st.name, n, st.changes)
		}
		if a, err := f.usage.Adoption(ctx, f.tenant, customer); err != nil || a.GetBand() != st.band {
			t.Fatalf("%s: adoption = %v, %v; want %v", st.name, a, err, st.band)
		}
		_, err := f.rdb.ZScore(ctx, schedule, member).Result()
		if onSchedule := err == nil; onSchedule != st.onSchedule {
			t.Fatalf("%s: on the rescoring schedule = %v, want %v", st.name, onSchedule, st.onSchedule)
		}
	}
}
