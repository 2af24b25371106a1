package rpc_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

func TestBatchGetProductsAndSubscriptions(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "product.read", "product.write")
	_, stranger := sys.NewKey(t, "", "product.read", "product.write")
	var products []string
	var lines []*salesv1.OrderLine
	for i := range 3 {
		id := sys.createProduct(t, key, productBody(fmt.Sprintf("BATCH-%d", i), "Batch", "BILLING_PERIOD_MONTHLY"))["id"].(string)
		products = append(products, id)
		lines = append(lines, &salesv1.OrderLine{ProductId: id, Quantity: 1, Recurring: true})
	}
	sys.CheckBatchGet(t, "products", key, stranger, products)
	customer := uuid.NewString()
	sys.placeOrder(t, tenant, customer, 1, lines...)
	subs := waitFor(t, "subscriptions", func() []map[string]any { return sys.subscriptionsOf(t, key, customer) },
		func(s []map[string]any) bool { return len(s) == 3 })
	var ids []string
	for _, s := range subs {
		ids = append(ids, s["id"].(string))
	}
	sys.CheckBatchGet(t, "subscriptions", key, stranger, ids)
}
