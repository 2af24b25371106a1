package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
	"github.com/crmcycle/crm/services/product"
)

// Catalog keys: the product, the unique SKUs, the list indexes, the name and SKU search indexes
// (pkg/search) and the product lines (scored by tier).
func (k tenantKeys) product(id string) string   { return k.Key("product", id) }
func (k tenantKeys) skus() string               { return k.Key("product-skus") }
func (k tenantKeys) search(field string) string { return k.Key("products", "search", field) }
func (k tenantKeys) line(name string) string    { return k.Key("product-line", name) }

func (k tenantKeys) productIndex(ix product.ProductIndex) string {
	switch {
	case ix.Category != "":
		return k.Key("products", "category", ix.Category)
	case ix.Active != nil:
		return k.Key("products", "active", strconv.FormatBool(*ix.Active))
	case ix.BillingPeriod != 0:
		return k.Key("products", "billing", ix.BillingPeriod.String())
	}
	return k.Key("products")
}

// productEntries are the index entries of a product: the id indexes (a product without a category
// is in none of the category indexes), the name index and its product line, scored by tier.
func (k tenantKeys) productEntries(p *product.Product) []commit.Entry {
	active := product.IsActive(p)
	ix := []product.ProductIndex{{}, {Active: &active}, {BillingPeriod: p.GetBillingPeriod()}}
	if p.GetCategory() != "" {
		ix = append(ix, product.ProductIndex{Category: p.GetCategory()})
	}
	var out []commit.Entry
	for _, m := range search.Members(p.GetId(), p.GetDisplayName()) {
		out = append(out, commit.Entry{Index: k.search("name"), Member: m})
	}
	for _, m := range search.Members(p.GetId(), p.GetSku()) {
		out = append(out, commit.Entry{Index: k.search("sku"), Member: m})
	}
	for _, x := range ix {
		out = append(out, commit.Entry{Index: k.productIndex(x), Member: p.GetId()})
	}
	if p.GetProductLine() != "" {
		out = append(out, commit.Entry{Index: k.line(p.GetProductLine()), Member: p.GetId(), Score: float64(p.GetTier())})
	}
	return out
}

// idOfMember is the product id of an id or search index member.
func idOfMember(m string) string {
	if strings.Contains(m, "\x00") {
		return search.ID(m)
	}
	return m
}

// skuKey is a SKU as the unique index holds it: SKUs are unique case-insensitively, like e-mails
// and domains (ABC-1 and abc-1 are one SKU), while the product keeps the SKU as written.
func skuKey(sku string) string { return strings.ToLower(sku) }

// CreateProduct implements product.CatalogStore.
func (s *Store) CreateProduct(ctx context.Context, tenant string, p *product.Product, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().
		Unique(k.skus(), skuKey(p.GetSku()), p.GetId()).
		Save(k.product(p.GetId()), p, "", p.GetEtag()).
		Move(nil, k.productEntries(p)).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return product.ErrSKUExists.With("existing_id", conflict.Owner)
	}
	return err
}

// UpdateProduct implements product.CatalogStore. The SKU never changes.
func (s *Store) UpdateProduct(ctx context.Context, tenant string, p, prev *product.Product, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().
		Save(k.product(p.GetId()), p, prev.GetEtag(), p.GetEtag()).
		Move(k.productEntries(prev), k.productEntries(p)).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return product.ErrStale
	}
	return err
}

// GetProduct implements product.CatalogStore: one round trip.
func (s *Store) GetProduct(ctx context.Context, tenant, id string) (*product.Product, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).product(id), &product.Product{}, product.ErrProductNotFound)
}

// GetProducts implements product.CatalogStore: one round trip.
func (s *Store) GetProducts(ctx context.Context, tenant string, ids []string) ([]*product.Product, error) {
	k := s.scope(tenant)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = k.product(id)
	}
	return commit.GetMany(ctx, s.rdb, keys, newProduct)
}

// ListProducts implements product.CatalogStore: two round trips, whatever the catalog's size.
func (s *Store) ListProducts(ctx context.Context, tenant string, q product.ProductQuery) (page.Page[*product.Product], error) {
	k := s.scope(tenant)
	r := commit.Range{Index: k.productIndex(q.Index), Desc: true, After: q.After, Limit: q.Limit}
	keyOf := func(m string) string { return k.product(idOfMember(m)) }
	prefix, _ := q.Index.Search(nil)
	if prefix == "" {
		return commit.List(ctx, s.rdb, r, keyOf, newProduct)
	}
	field := "name"
	if q.Index.SKU != "" {
		field = "sku"
	}
	lo, hi := prefix.Range()
	r = commit.Range{Index: k.search(field), Min: lo, Max: hi, After: q.After, Limit: q.Limit}
	return commit.ListWhere(ctx, s.rdb, r, keyOf, newProduct, func(member string, p *product.Product) bool {
		_, texts := q.Index.Search(p)
		matched, ok := prefix.Match(p.GetId(), texts...)
		return ok && matched == member && q.Index.Has(p)
	}, searchBudget*q.Limit)
}

// searchBudget is how many index members one search page examines at most per product it returns.
const searchBudget = 5

func newProduct() *product.Product { return &product.Product{} }

// ProductLine implements product.CatalogStore.
func (s *Store) ProductLine(ctx context.Context, tenant, line string) ([]string, error) {
	return s.rdb.ZRange(ctx, s.scope(tenant).line(line), 0, -1).Result()
}

// ProductIDsBySKU implements product.ImportStore: one round trip.
func (s *Store) ProductIDsBySKU(ctx context.Context, tenant string, skus []string) ([]string, error) {
	if len(skus) == 0 {
		return nil, nil
	}
	fields := make([]string, len(skus))
	for i, sku := range skus {
		fields[i] = skuKey(sku)
	}
	v, err := s.rdb.HMGet(ctx, s.scope(tenant).skus(), fields...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out, nil
}

// ImportProducts implements product.ImportStore: the writes of CreateProduct and UpdateProduct in
// a few script calls (commit.RunBatch), each still atomic.
func (s *Store) ImportProducts(ctx context.Context, tenant string, writes []*product.ProductWrite) ([]error, error) {
	k := s.scope(tenant)
	ws := make([]*commit.Write, len(writes))
	for i, pw := range writes {
		w := commit.New()
		var before []commit.Entry
		if pw.Prev == nil {
			w.Unique(k.skus(), skuKey(pw.Product.GetSku()), pw.Product.GetId())
		} else {
			before = k.productEntries(pw.Prev)
		}
		ws[i] = w.Save(k.product(pw.Product.GetId()), pw.Product, pw.Prev.GetEtag(), pw.Product.GetEtag()).
			Move(before, k.productEntries(pw.Product)).
			Append(k.Stream(), pw.Event)
	}
	errs, err := commit.RunBatch(ctx, s.rdb, ws)
	if err != nil {
		return nil, err
	}
	for i, werr := range errs {
		if conflict, ok := errors.AsType[*commit.UniqueConflictError](werr); ok {
			errs[i] = product.ErrSKUExists.With("existing_id", conflict.Owner)
		} else if errors.Is(werr, commit.ErrVersionMismatch) {
			errs[i] = product.ErrStale
		}
	}
	return errs, nil
}
