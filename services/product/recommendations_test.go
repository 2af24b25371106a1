package product_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/product"
)

// expectedRecommendation is what the independent computation says a customer should be offered.
type expectedRecommendation struct {
	Product, BasedOn string
	Kind             productv1.RecommendationKind
	Score            int32
}

func TestRecommendationsMatchAnIndependentComputation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(6, 6))

	// A catalog of 12 products: a three-tier line, and nine others, one archived later.
	var catalog []*product.Product
	for tier := range int32(3) {
		catalog = append(catalog, f.product(t, productSpec{sku: fmt.Sprint("SUITE-", tier), period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, line: "suite", tier: tier + 1}))
	}
	for i := range 9 {
		catalog = append(catalog, f.product(t, productSpec{sku: fmt.Sprint("ADDON-", i), period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME}))
	}

	// A generated order history: 40 customers, 150 orders of 1 to 4 distinct products.
	customers := make([]string, 40)
	for i := range customers {
		customers[i] = uuid.NewString()
	}
	type order struct {
		customer string
		products []*product.Product
	}
	var history []order
	for range 150 {
		o := order{customer: customers[rng.IntN(len(customers))]}
		for _, i := range rng.Perm(len(catalog))[:1+rng.IntN(4)] {
			o.products = append(o.products, catalog[i])
		}
		lines := make([]*salesv1.OrderLine, len(o.products))
		for i, p := range o.products {
			lines[i] = line(p, 1)
		}
		if err := f.onSales(ctx, f.orderEvent(t, o.customer, lines...)); err != nil {
			t.Fatal(err)
		}
		history = append(history, o)
	}
	archived := catalog[len(catalog)-1]
	if _, err := f.catalog.Archive(ctx, f.tenant, archived.GetId(), ""); err != nil {
		t.Fatal(err)
	}

	// The independent computation, from the raw history.
	ordersWith := map[string]int64{}
	both := map[[2]string]int64{}
	owned := map[string]map[string]bool{}
	for _, o := range history {
		if owned[o.customer] == nil {
			owned[o.customer] = map[string]bool{}
		}
		for _, a := range o.products {
			owned[o.customer][a.GetId()] = true
			ordersWith[a.GetId()]++
			for _, b := range o.products {
				if a != b {
					both[[2]string{a.GetId(), b.GetId()}]++
				}
			}
		}
	}
	expect := func(customer string) []expectedRecommendation {
		type scored struct {
			expectedRecommendation
			together int64
		}
		best := map[string]scored{}
		consider := func(c scored) {
			if owned[customer][c.Product] || c.Product == archived.GetId() {
				return
			}
			b, ok := best[c.Product]
			if !ok || c.Score > b.Score || c.Score == b.Score && (c.together > b.together ||
				c.together == b.together && c.BasedOn < b.BasedOn) {
				best[c.Product] = c
			}
		}
		for _, a := range catalog {
			if !owned[customer][a.GetId()] {
				continue
			}
			for _, b := range catalog {
				if n := both[[2]string{a.GetId(), b.GetId()}]; n > 0 {
					consider(scored{expectedRecommendation{b.GetId(), a.GetId(), productv1.RecommendationKind_RECOMMENDATION_KIND_CROSS_SELL,
						int32(100 * n / ordersWith[a.GetId()])}, n})
				}
			}
			if a.GetProductLine() == "suite" && a.GetTier() < 3 {
				consider(scored{expectedRecommendation{catalog[a.GetTier()].GetId(), a.GetId(), productv1.RecommendationKind_RECOMMENDATION_KIND_UPSELL, 50}, 0})
			}
		}
		var out []scored
		for _, c := range best {
			out = append(out, c)
		}
		slices.SortFunc(out, func(x, y scored) int {
			switch {
			case x.Score != y.Score:
				return int(y.Score - x.Score)
			case x.together != y.together:
				return int(y.together - x.together)
			case x.Product < y.Product:
				return -1
			}
			return 1
		})
		res := []expectedRecommendation{}
		for _, c := range out[:min(len(out), 10)] {
			res = append(res, c.expectedRecommendation)
		}
		return res
	}

	upsells := 0
	for _, c := range customers {
		if owned[c] == nil {
			if _, err := f.recs.List(ctx, f.tenant, c, 10); err == nil {
				t.Errorf("customer %s without orders: no error", c)
			}
			continue
		}
		recs, err := f.recs.List(ctx, f.tenant, c, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := []expectedRecommendation{}
		for _, r := range recs {
			got = append(got, expectedRecommendation{r.GetProductId(), r.GetBasedOnProductId(), r.GetKind(), r.GetScore()})
			if r.GetKind() == productv1.RecommendationKind_RECOMMENDATION_KIND_UPSELL {
				upsells++
			}
			if r.GetReason() == "" {
				t.Errorf("recommendation without a reason: %v", r)
			}
		}
		if diff := cmp.Diff(expect(c), got); diff != "" {
			t.Errorf("customer %s (-want +got):\n%s", c, diff)
		}
	}
	if upsells == 0 {
		t.Error("the history produced no upsell: the test proves nothing about them")
	}
}
