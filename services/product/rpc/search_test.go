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
	sys := startSystem(t)
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
	for _, field := range []struct {
		name  string
		plain func(record) string
		words []string
	}{{"display_name", func(r record) string { return r.name }, searchtest.Companies}, {"sku", func(r record) string { return r.sku }, searchtest.Given}} {
		for i, q := range searchtest.Queries(field.words) {
			var want []string
			for _, p := range products {
				if searchtest.Matches(field.plain(p), q) {
					want = append(want, p.id)
				}
			}
			typed := q
			if i%2 == 1 {
				typed = searchtest.Decorate(rng, q)
			}
			got := listProducts(t, client, ctx, fmt.Sprintf("%s:%q", field.name, typed+"*"))
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s:%q: %d products, want %d", field.name, typed, len(got), len(want))
			}
		}
	}
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
