package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/product"
)

// Catalog keys: the product, the unique SKUs, the list indexes, the name index (members
// "<lower-case name>\x00<id>", read by prefix) and the product lines (scored by tier).
func (k tenantKeys) product(id string) string { return k.Key("product", id) }
func (k tenantKeys) skus() string             { return k.Key("product-skus") }
func (k tenantKeys) names() string            { return k.Key("products", "names") }
func (k tenantKeys) line(name string) string  { return k.Key("product-line", name) }

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

// productIndexes are the id indexes a product belongs to; a product without a category is in
// none of the category indexes.
func (k tenantKeys) productIndexes(p *product.Product) []string {
	active := product.IsActive(p)
	ix := []string{
		k.productIndex(product.ProductIndex{}),
		k.productIndex(product.ProductIndex{Active: &active}),
		k.productIndex(product.ProductIndex{BillingPeriod: p.GetBillingPeriod()}),
	}
	if p.GetCategory() != "" {
		ix = append(ix, k.productIndex(product.ProductIndex{Category: p.GetCategory()}))
	}
	return ix
}

func nameMember(p *product.Product) string {
	return strings.ToLower(p.GetDisplayName()) + "\x00" + p.GetId()
}

// CreateProduct implements product.CatalogStore.
func (s *Store) CreateProduct(ctx context.Context, tenant string, p *product.Product, event []byte) error {
	data, err := proto.Marshal(p)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().
		ExpectVersion(k.product(p.GetId()), "").
		Unique(k.skus(), p.GetSku(), p.GetId()).
		Put(k.product(p.GetId()), data, p.GetEtag()).
		ZAdd(k.names(), 0, nameMember(p))
	for _, ix := range k.productIndexes(p) {
		w.ZAdd(ix, 0, p.GetId())
	}
	if p.GetProductLine() != "" {
		w.ZAdd(k.line(p.GetProductLine()), float64(p.GetTier()), p.GetId())
	}
	err = w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return product.ErrSKUExists.With("existing_id", conflict.Owner)
	}
	return err
}

// UpdateProduct implements product.CatalogStore. The SKU never changes.
func (s *Store) UpdateProduct(ctx context.Context, tenant string, p, prev *product.Product, event []byte) error {
	data, err := proto.Marshal(p)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().
		ExpectVersion(k.product(p.GetId()), prev.GetEtag()).
		Put(k.product(p.GetId()), data, p.GetEtag())
	if nameMember(p) != nameMember(prev) {
		w.ZRem(k.names(), nameMember(prev)).ZAdd(k.names(), 0, nameMember(p))
	}
	oldIx, newIx := k.productIndexes(prev), k.productIndexes(p)
	for _, ix := range oldIx {
		w.ZRem(ix, p.GetId())
	}
	for _, ix := range newIx {
		w.ZAdd(ix, 0, p.GetId())
	}
	if prev.GetProductLine() != "" {
		w.ZRem(k.line(prev.GetProductLine()), p.GetId())
	}
	if p.GetProductLine() != "" {
		w.ZAdd(k.line(p.GetProductLine()), float64(p.GetTier()), p.GetId())
	}
	err = w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return product.ErrStale
	}
	return err
}

// GetProduct implements product.CatalogStore: one round trip.
func (s *Store) GetProduct(ctx context.Context, tenant, id string) (*product.Product, error) {
	p := &product.Product{}
	found, err := get(ctx, s.rdb, s.scope(tenant).product(id), p)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, product.ErrProductNotFound
	}
	return p, nil
}

// GetProducts implements product.CatalogStore: one round trip.
func (s *Store) GetProducts(ctx context.Context, tenant string, ids []string) ([]*product.Product, error) {
	k := s.scope(tenant)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = k.product(id)
	}
	return getMany(ctx, s.rdb, keys, func() *product.Product { return &product.Product{} })
}

// ListProducts implements product.CatalogStore: two round trips, whatever the catalog's size.
func (s *Store) ListProducts(ctx context.Context, tenant string, q product.ProductQuery) ([]*product.Product, string, error) {
	k := s.scope(tenant)
	r := lexRange{index: k.productIndex(q.Index), after: q.After, limit: q.Limit, rev: true}
	if q.Index.NamePrefix != "" {
		r = lexRange{index: k.names(), after: q.After, limit: q.Limit, prefix: q.Index.NamePrefix}
	}
	members, next, err := r.read(ctx, s.rdb)
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, len(members))
	for i, m := range members {
		_, id, _ := strings.Cut(m, "\x00")
		if id == "" {
			id = m
		}
		keys[i] = k.product(id)
	}
	products, err := getMany(ctx, s.rdb, keys, func() *product.Product { return &product.Product{} })
	if err != nil {
		return nil, "", err
	}
	return present(products), next, nil
}

// ProductLine implements product.CatalogStore.
func (s *Store) ProductLine(ctx context.Context, tenant, line string) ([]string, error) {
	return s.rdb.ZRange(ctx, s.scope(tenant).line(line), 0, -1).Result()
}
