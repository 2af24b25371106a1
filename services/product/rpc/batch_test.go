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

func TestExportProducts(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "product.read", "product.write", "product.export")
	_, reader := sys.NewKey(t, tenant, "product.read")
	_, stranger := sys.NewKey(t, "", "product.export")
	var all, monthly []string
	for i, period := range []string{"BILLING_PERIOD_MONTHLY", "BILLING_PERIOD_YEARLY", "BILLING_PERIOD_MONTHLY"} {
		id := sys.createProduct(t, key, productBody(fmt.Sprintf("EXP-%d", i), "Export", period))["id"].(string)
		all = append(all, id)
		if period == "BILLING_PERIOD_MONTHLY" {
			monthly = append(monthly, id)
		}
	}
	sys.CheckExport(t, "products", "", key, stranger, reader, all)
	sys.CheckExport(t, "products", "billing_period = BILLING_PERIOD_MONTHLY", key, stranger, reader, monthly)
}
