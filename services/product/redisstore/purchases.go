package redisstore

import (
	"context"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/product"
)

// Purchase counters, kept at write time for recommendations: per product, the orders that had it;
// per pair of products, the orders that had both.
func (k tenantKeys) productOrders() string               { return k.Key("product-orders") }
func (k tenantKeys) copurchases(productID string) string { return k.Key("copurchases", productID) }

// countPurchases counts one order's distinct products and each pair of them into the write.
func (k tenantKeys) countPurchases(w *commit.Write, products []string) {
	for i, a := range products {
		w.HIncrBy(k.productOrders(), a, 1)
		for j, b := range products {
			if i != j {
				w.HIncrBy(k.copurchases(a), b, 1)
			}
		}
	}
}

var _ product.PurchaseStore = (*Store)(nil)

// Owned implements product.PurchaseStore.
func (s *Store) Owned(ctx context.Context, tenant, customer string) ([]string, bool, error) {
	all, err := s.rdb.HGetAll(ctx, s.scope(tenant).owned(customer)).Result()
	if err != nil {
		return nil, false, err
	}
	var owned []string
	for p, n := range all {
		if n != "0" {
			owned = append(owned, p)
		}
	}
	slices.Sort(owned)
	return owned, len(all) > 0, nil
}

// Purchases implements product.PurchaseStore: one round trip.
func (s *Store) Purchases(ctx context.Context, tenant string, productIDs []string) ([]product.Purchases, error) {
	if len(productIDs) == 0 {
		return nil, nil
	}
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	orders := pipe.HMGet(ctx, k.productOrders(), productIDs...)
	with := make([]*redis.MapStringStringCmd, len(productIDs))
	for i, p := range productIDs {
		with[i] = pipe.HGetAll(ctx, k.copurchases(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]product.Purchases, len(productIDs))
	for i := range productIDs {
		n, _ := orders.Val()[i].(string)
		out[i].Orders, _ = strconv.ParseInt(n, 10, 64)
		out[i].With = make(map[string]int64, len(with[i].Val()))
		for other, both := range with[i].Val() {
			out[i].With[other], _ = strconv.ParseInt(both, 10, 64)
		}
	}
	return out, nil
}
