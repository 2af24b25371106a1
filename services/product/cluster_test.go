package product_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// TestProductWritesOnCluster runs every kind of product write and read on a 3-master Redis Cluster:
// a tenant's keys, the partition's renewal schedule and the seen markers share one slot, so nothing
// is refused with CROSSSLOT.
func TestProductWritesOnCluster(t *testing.T) {
	ctx := context.Background()
	for range 4 { // tenants land in different partitions, so on different masters
		f := newFixtureOn(t, redistest.ClusterClient(t))
		p := f.product(t, productSpec{sku: "M", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, features: []string{"a"}})
		q := f.product(t, productSpec{sku: "O", period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME})
		renamed, err := f.catalog.Update(ctx, f.tenant, &product.Product{Id: p.GetId(), DisplayName: "Renamed"}, nil)
		if err != nil || renamed.GetDisplayName() != "Renamed" || !proto.Equal(renamed.GetPrice(), p.GetPrice()) || renamed.GetEtag() == p.GetEtag() {
			t.Fatalf("a rename without a mask: got %v, %v, want the new name, the price kept and a new etag", renamed, err)
		}
		if _, err := f.catalog.Archive(ctx, f.tenant, q.GetId(), ""); err != nil {
			t.Fatal(err)
		}
		customer := uuid.NewString()
		sub := f.subscribe(t, customer, p, 2)
		if _, err := f.usage.Record(ctx, f.tenant, sub.GetId(), &product.UsageRecord{Feature: "a", Quantity: 1, UserId: "u"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.subs.Cancel(ctx, f.tenant, sub.GetId(), true, ""); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(start.AddDate(0, 2, 0))
		if err := f.subs.SweepPartition(ctx, f.keys.Partition(f.tenant)); err != nil {
			t.Fatal(err)
		}
		if got, err := f.subs.Get(ctx, f.tenant, sub.GetId()); err != nil || got.GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_EXPIRED {
			t.Fatalf("after the sweep: %v, %v; want EXPIRED", got, err)
		}
		if _, err := f.recs.List(ctx, f.tenant, customer, 10); err != nil {
			t.Fatal(err)
		}
		if _, err := f.catalog.List(ctx, f.tenant, product.ProductQuery{Index: product.ProductIndex{Name: "m"}, Request: page.Request{Limit: 10}}); err != nil {
			t.Fatal(err)
		}
	}
}
