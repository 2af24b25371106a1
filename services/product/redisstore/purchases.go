package redisstore

import (
	"github.com/crmcycle/crm/pkg/commit"
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
