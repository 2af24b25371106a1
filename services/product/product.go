// Package product is the product service's domain: the catalog and its prices, subscriptions and
// entitlements created from placed orders, usage and adoption health, and recommendations. Use
// cases here decide; the store (redisstore) writes each decision, its indexes and its outbox event
// in one atomic commit.
package product

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// Product is the stored and served form of a catalog product.
type Product = productv1.Product

// Errors of the catalog.
var (
	ErrProductNotFound = apierr.New(apierr.NotFound, "PRODUCT_NOT_FOUND", "product not found")
	ErrSKUExists       = apierr.New(apierr.AlreadyExists, "PRODUCT_SKU_EXISTS", "another product has this SKU")
	ErrProductEtag     = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the product changed since it was read; read it again and retry")
	ErrProductArchived   = apierr.New(apierr.FailedPrecondition, "PRODUCT_ARCHIVED", "the product is archived")
	ErrProductContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the product kept changing concurrently; retry")
)

// ErrStale means a resource changed between read and write.
var ErrStale = errors.New("product: resource changed since it was read")

// MergedError means a write named a customer merged into Survivor: what it grants belongs to the
// survivor (an order placed just before a merge whose event arrives after it).
type MergedError struct{ Survivor string }

func (e *MergedError) Error() string { return "product: the customer was merged into " + e.Survivor }

// ProductIndex names a secondary index of the catalog: all products (zero value), or those of one
// category, active flag, billing period or name prefix. At most one field is set.
//
// A search reads the name or SKU search index (pkg/search) instead, and checks the equality field
// set with it (a pair) on each product it finds.
type ProductIndex struct {
	Category      string
	Active        *bool
	BillingPeriod productv1.BillingPeriod
	Name, SKU     search.Prefix
}

// Search is the prefix and the texts of a product it searches, "" when the index is no search.
func (ix ProductIndex) Search(p *Product) (search.Prefix, []string) {
	if ix.SKU != "" {
		return ix.SKU, []string{p.GetSku()}
	}
	return ix.Name, []string{p.GetDisplayName()}
}

// Has is whether the product has the index's equality fields.
func (ix ProductIndex) Has(p *Product) bool {
	return (ix.Category == "" || p.GetCategory() == ix.Category) &&
		(ix.Active == nil || IsActive(p) == *ix.Active) &&
		(ix.BillingPeriod == 0 || p.GetBillingPeriod() == ix.BillingPeriod)
}

// ProductQuery is one page of a product list.
type ProductQuery struct {
	Index ProductIndex
	page.Request
}

// CatalogStore persists products with their indexes and outbox events.
type CatalogStore interface {
	// CreateProduct stores a new product; ErrSKUExists (with the owner's id) when the SKU is taken.
	CreateProduct(ctx context.Context, tenant string, p *Product, event []byte) error
	// UpdateProduct replaces prev with p; ErrStale when prev is not current.
	UpdateProduct(ctx context.Context, tenant string, p, prev *Product, event []byte) error
	GetProduct(ctx context.Context, tenant, id string) (*Product, error)
	// GetProducts reads several products in one round trip; missing ones are nil.
	GetProducts(ctx context.Context, tenant string, ids []string) ([]*Product, error)
	ListProducts(ctx context.Context, tenant string, q ProductQuery) (page.Page[*Product], error)
	// ProductLine returns the ids of a product line's products, lowest tier first.
	ProductLine(ctx context.Context, tenant, line string) ([]string, error)
}

// IsActive reports whether a product is for sale.
func IsActive(p *Product) bool { return p.GetActive() && p.GetArchiveTime() == nil }

// Recurring reports whether a billing period renews.
func Recurring(bp productv1.BillingPeriod) bool {
	return bp == productv1.BillingPeriod_BILLING_PERIOD_MONTHLY || bp == productv1.BillingPeriod_BILLING_PERIOD_YEARLY
}
