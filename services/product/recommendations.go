package product

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// upsellScore ranks an upsell among cross-sells: as an offer that half the owners of a product
// would also buy.
const upsellScore = 50

// Recommendation is the served form of a recommendation.
type Recommendation = productv1.Recommendation

// Purchases are a tenant's purchase counters, kept at write time by the order consumer.
type Purchases struct {
	// Orders is how many orders had the product.
	Orders int64
	// With is, per other product, how many orders had both.
	With map[string]int64
}

// PurchaseStore reads what recommendations are computed from.
type PurchaseStore interface {
	// Owned returns the products the customer has an active grant of; false when the customer
	// never had one.
	Owned(ctx context.Context, tenant, customerID string) ([]string, bool, error)
	// Purchases returns the purchase counters of each product, in one round trip.
	Purchases(ctx context.Context, tenant string, productIDs []string) ([]Purchases, error)
}

// Recommendations are the cross-sell and upsell use cases.
type Recommendations struct {
	purchases PurchaseStore
	catalog   CatalogStore
}

// NewRecommendations returns the use cases.
func NewRecommendations(purchases PurchaseStore, catalog CatalogStore) *Recommendations {
	return &Recommendations{purchases: purchases, catalog: catalog}
}

// List recommends up to limit products the customer does not own, best first: cross-sell scored
// by the share of the tenant's orders of an owned product that also had the candidate (the best
// owned product counts), upsell the next higher tier of an owned product line. Only products for
// sale are offered. Ties go to the more often co-purchased, then to the smaller id.
func (r *Recommendations) List(ctx context.Context, tenant, customerID string, limit int) ([]*Recommendation, error) {
	ownedIDs, known, err := r.purchases.Owned(ctx, tenant, customerID)
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, ErrNoCustomer
	}
	owned, err := r.catalog.GetProducts(ctx, tenant, ownedIDs)
	if err != nil {
		return nil, err
	}
	counts, err := r.purchases.Purchases(ctx, tenant, ownedIDs)
	if err != nil {
		return nil, err
	}
	best := map[string]*candidate{}
	offer := func(c *candidate) {
		if slices.Contains(ownedIDs, c.productID) {
			return
		}
		if b, ok := best[c.productID]; !ok || c.better(b) {
			best[c.productID] = c
		}
	}
	for i, p := range owned {
		if p == nil {
			continue
		}
		for other, both := range counts[i].With {
			offer(&candidate{productID: other, kind: productv1.RecommendationKind_RECOMMENDATION_KIND_CROSS_SELL,
				score: int32(100 * both / counts[i].Orders), together: both, basedOn: p,
				reason: fmt.Sprintf("bought together with %s in %d of %d orders", p.GetSku(), both, counts[i].Orders)})
		}
		if up, err := r.upsell(ctx, tenant, p); err != nil {
			return nil, err
		} else if up != nil {
			offer(up)
		}
	}
	return r.present(ctx, tenant, best, limit)
}

// upsell is the next higher tier for sale in an owned product's line, if any.
func (r *Recommendations) upsell(ctx context.Context, tenant string, p *Product) (*candidate, error) {
	if p.GetProductLine() == "" {
		return nil, nil
	}
	ids, err := r.catalog.ProductLine(ctx, tenant, p.GetProductLine())
	if err != nil {
		return nil, err
	}
	line, err := r.catalog.GetProducts(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	for _, q := range line { // lowest tier first
		if q != nil && q.GetTier() > p.GetTier() && IsActive(q) {
			return &candidate{productID: q.GetId(), kind: productv1.RecommendationKind_RECOMMENDATION_KIND_UPSELL,
				score: upsellScore, basedOn: p,
				reason: fmt.Sprintf("the next tier (%d) of the %s line, above %s", q.GetTier(), p.GetProductLine(), p.GetSku())}, nil
		}
	}
	return nil, nil
}

// present ranks candidates, drops those not for sale and fills in their names.
func (r *Recommendations) present(ctx context.Context, tenant string, best map[string]*candidate, limit int) ([]*Recommendation, error) {
	ranked := make([]*candidate, 0, len(best))
	for _, c := range best {
		ranked = append(ranked, c)
	}
	slices.SortFunc(ranked, func(a, b *candidate) int {
		if a.better(b) {
			return -1
		}
		return 1
	})
	ids := make([]string, len(ranked))
	for i, c := range ranked {
		ids[i] = c.productID
	}
	products, err := r.catalog.GetProducts(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	out := []*Recommendation{}
	for i, c := range ranked {
		if len(out) == limit {
			break
		}
		if p := products[i]; p != nil && IsActive(p) {
			out = append(out, &Recommendation{ProductId: p.GetId(), Sku: p.GetSku(), DisplayName: p.GetDisplayName(),
				Kind: c.kind, Reason: c.reason, Score: c.score, BasedOnProductId: c.basedOn.GetId()})
		}
	}
	return out, nil
}

type candidate struct {
	productID string
	kind      productv1.RecommendationKind
	score     int32
	together  int64
	basedOn   *Product
	reason    string
}

// better orders candidates: higher score, then more co-purchases, then the smaller product id,
// then the smaller owned product id (so the reason is deterministic).
func (c *candidate) better(o *candidate) bool {
	if d := cmp.Or(cmp.Compare(o.score, c.score), cmp.Compare(o.together, c.together),
		cmp.Compare(c.productID, o.productID), cmp.Compare(c.basedOn.GetId(), o.basedOn.GetId())); d != 0 {
		return d < 0
	}
	return false
}
