package rpc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/crmcycle/crm/pkg/search/searchtest"
	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// TestProductSearchAgainstAnIndependentComputation: products named and coded in random case and
// accents; every name or SKU prefix finds exactly the products whose plain words start with it,
// each once; a product is found the moment it is created and not after a rename.
func TestProductSearchAgainstAnIndependentComputation(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	client, ctx := sys.product(key)
	rng := rand.New(rand.NewPCG(5, 5))
	type record struct{ id, name, sku string }
	var products []record
	for i := range servicetest.Size(1_000, 10_000) {
		name, code := searchtest.Pick(rng, searchtest.Companies), searchtest.Pick(rng, searchtest.Given)
		sku := fmt.Sprintf("%s %d", code.Plain, i)
		res, err := client.CreateProduct(ctx, &productv1.CreateProductRequest{Product: &productv1.Product{
			Sku: fmt.Sprintf("%s-%d", code.Text, i), DisplayName: name.Text, Price: &typev1.Money{CurrencyCode: "EUR", Units: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		id := res.GetProduct().GetId()
		products = append(products, record{id: id, name: name.Plain, sku: sku})
		got := listProducts(t, client, ctx, fmt.Sprintf("sku:%q", fmt.Sprintf("%s-%d*", code.Text, i)))
		if !slices.Equal(got, []string{id}) {
			t.Fatalf("product %d: found by its SKU %v, want %s", i, got, id)
		}
	}
	var names, skus []searchtest.Record
	for _, p := range products {
		names = append(names, searchtest.Record{ID: p.id, Plain: p.name})
		skus = append(skus, searchtest.Record{ID: p.id, Plain: p.sku})
	}
	find := func(filter string, _ int) []string { return listProducts(t, client, ctx, filter) }
	searchtest.Check(t, "display_name", names, [][]string{searchtest.Companies}, find)
	searchtest.Check(t, "sku", skus, [][]string{searchtest.Given}, find)
}

// listProducts pages through ListProducts with filter and returns the ids.
func listProducts(t *testing.T, client productv1.ProductServiceClient, ctx context.Context, filter string) []string {
	t.Helper()
	var ids []string
	for token := ""; ; {
		res, err := client.ListProducts(ctx, &productv1.ListProductsRequest{Filter: filter, PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		for _, p := range res.GetProducts() {
			ids = append(ids, p.GetId())
		}
		if token = res.GetNextPageToken(); token == "" {
			return ids
		}
	}
}
