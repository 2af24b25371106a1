package product

import (
	"context"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Errors of pricing.
var (
	ErrQuoteUnpriceable = apierr.New(apierr.FailedPrecondition, "PRODUCT_NOT_QUOTABLE",
		"a line's product cannot be quoted")
	ErrQuoteTooLarge = apierr.New(apierr.FailedPrecondition, "QUOTE_TOO_LARGE", "the quote's total does not fit the money type")
	errNegativePrice = apierr.Invalid("product.price", "must not be negative")
)

// updatableProductFields are the fields UpdateProduct may change (its update_mask paths).
var updatableProductFields = []string{"display_name", "description", "category", "active", "price",
	"additional_prices", "billing_period", "product_line", "tier", "features"}

// Catalog is the catalog use cases.
type Catalog struct {
	store     CatalogStore
	publisher events.Publisher
	validator protovalidate.Validator
	now       func() time.Time
}

// NewCatalog returns the use cases over store.
func NewCatalog(store CatalogStore, publisher events.Publisher, validator protovalidate.Validator, now func() time.Time) *Catalog {
	return &Catalog{store: store, publisher: publisher, validator: validator, now: now}
}

// Create adds a product; a taken SKU is ALREADY_EXISTS with the existing product's id.
func (c *Catalog) Create(ctx context.Context, tenant string, in *Product) (*Product, error) {
	if err := checkPrices(in); err != nil {
		return nil, err
	}
	now := c.now().UTC()
	ts := timestamppb.New(now)
	p := proto.CloneOf(in)
	p.Id = uuid.Must(uuid.NewV7()).String()
	p.CreateTime, p.UpdateTime, p.ArchiveTime = ts, ts, nil
	p.Etag = etag.First
	if p.Active == nil {
		p.Active = proto.Bool(true)
	}
	event, err := c.event(ctx, tenant, productv1.EventProductCreated, p, now)
	if err != nil {
		return nil, err
	}
	if err := c.store.CreateProduct(ctx, tenant, p, event); err != nil {
		return nil, err
	}
	return p, nil
}

// Get returns one product.
func (c *Catalog) Get(ctx context.Context, tenant, id string) (*Product, error) {
	return c.store.GetProduct(ctx, tenant, id)
}

// GetMany returns products by id, in order: all, or ErrProductNotFound naming the missing.
func (c *Catalog) GetMany(ctx context.Context, tenant string, ids []string) ([]*Product, error) {
	found, err := c.store.GetProducts(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	return batch.All(found, ids, ErrProductNotFound)
}

// List returns a page of products.
func (c *Catalog) List(ctx context.Context, tenant string, q ProductQuery) (page.Page[*Product], error) {
	return c.store.ListProducts(ctx, tenant, q)
}

// Update changes the fields named by mask (when it is empty, the fields `in` sets). A given etag
// that is not the current one is ABORTED; the merged product is validated as a whole.
func (c *Catalog) Update(ctx context.Context, tenant string, in *Product, mask *fieldmaskpb.FieldMask) (*Product, error) {
	if in == nil {
		return nil, apierr.Invalid("product", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("product.id", "must be a product id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableProductFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return c.change(ctx, tenant, in.GetId(), in.GetEtag(), productv1.EventProductUpdated, func(existing *Product) (*Product, error) {
		if len(fields.Fields) == 0 { // nothing to change: change writes nothing for the product it gave
			if err := fields.Unchanged(existing, in); err != nil {
				return nil, err
			}
			return existing, nil
		}
		if existing.GetArchiveTime() != nil {
			return nil, ErrProductArchived
		}
		merged := proto.CloneOf(existing)
		if err := protoupdate.Apply(merged, in, fields); err != nil {
			return nil, err
		}
		if merged.Active == nil {
			merged.Active = proto.Bool(existing.GetActive())
		}
		if err := protoupdate.Validate(c.validator, "product", merged); err != nil {
			return nil, err
		}
		if err := checkPrices(merged); err != nil {
			return nil, err
		}
		return merged, nil
	})
}

// Archive takes a product out of sale for good. Subscriptions to it go on.
func (c *Catalog) Archive(ctx context.Context, tenant, id, ifMatch string) (*Product, error) {
	return c.change(ctx, tenant, id, ifMatch, productv1.EventProductArchived, func(existing *Product) (*Product, error) {
		if existing.GetArchiveTime() != nil {
			return existing, nil
		}
		archived := proto.CloneOf(existing)
		archived.Active = proto.Bool(false)
		archived.ArchiveTime = timestamppb.New(c.now().UTC())
		return archived, nil
	})
}

// change reads the product, checks ifMatch against the version read (a stale one is ErrProductEtag)
// and writes what edit makes of it, conditional on that version; a write that lost a race reads
// again, so a request without an etag is not refused for a change it never saw. edit returning
// the product it was given changes nothing.
func (c *Catalog) change(ctx context.Context, tenant, id, ifMatch string, eventType eventv1.Type[*productv1.ProductChanged],
	edit func(existing *Product) (*Product, error)) (*Product, error) {
	return etag.Retry(ErrStale, ErrProductContention, func() (*Product, error) {
		existing, err := c.store.GetProduct(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrProductEtag); err != nil {
			return nil, err
		}
		p, err := edit(existing)
		if err != nil || p == existing {
			return p, err
		}
		now := c.now().UTC()
		p.UpdateTime = timestamppb.New(now)
		p.Etag = etag.Next(existing.GetEtag())
		event, err := c.event(ctx, tenant, eventType, p, now)
		if err != nil {
			return nil, err
		}
		if err := c.store.UpdateProduct(ctx, tenant, p, existing, event); err != nil {
			return nil, err
		}
		return p, nil
	})
}

// Quote prices items at the current prices in one currency, exactly. A missing, inactive or
// archived product, or one without a price in the currency, is FAILED_PRECONDITION naming the line.
func (c *Catalog) Quote(ctx context.Context, tenant, currency string, items []*productv1.QuoteItem) (*productv1.QuoteLineItemsResponse, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.GetProductId()
	}
	products, err := c.store.GetProducts(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	out := &productv1.QuoteLineItemsResponse{}
	totals := make([]*typev1.Money, 0, len(items))
	for i, it := range items {
		p := products[i]
		unit, why := quotable(p, currency)
		if why != "" {
			field := fmt.Sprintf("items[%d].product_id", i)
			e := ErrQuoteUnpriceable.With("line", fmt.Sprint(i))
			e.Message = fmt.Sprintf("line %d: %s", i, why)
			e.Fields = []apierr.FieldViolation{{Field: field, Description: why}}
			return nil, e
		}
		total, err := money.Times(unit, it.GetQuantity())
		if err == nil {
			total, err = money.LessPercent(total, it.GetDiscountPercent())
		}
		if err != nil {
			return nil, ErrQuoteTooLarge.Wrap(err)
		}
		totals = append(totals, total)
		out.Lines = append(out.Lines, &productv1.QuotedLine{
			ProductId: p.GetId(), Sku: p.GetSku(), DisplayName: p.GetDisplayName(), Quantity: it.GetQuantity(),
			UnitPrice: unit, DiscountPercent: it.GetDiscountPercent(), Total: total, BillingPeriod: p.GetBillingPeriod(),
		})
	}
	if out.Total, err = money.Sum(currency, totals...); err != nil {
		return nil, ErrQuoteTooLarge.Wrap(err)
	}
	return out, nil
}

// quotable returns the product's unit price in currency, or why it cannot be sold in it.
func quotable(p *Product, currency string) (unit *typev1.Money, why string) {
	switch {
	case p == nil:
		return nil, "no such product"
	case p.GetArchiveTime() != nil:
		return nil, "the product is archived"
	case !p.GetActive():
		return nil, "the product is not active"
	}
	if unit = priceIn(p, currency); unit == nil {
		return nil, "the product has no price in " + currency
	}
	return unit, ""
}

// checkPrices checks what field rules cannot: prices are not negative and the price book has at
// most one price per currency, none in the list price's.
func checkPrices(p *Product) error {
	if money.Sign(p.GetPrice()) < 0 {
		return errNegativePrice
	}
	seen := map[string]bool{p.GetPrice().GetCurrencyCode(): true}
	for i, m := range p.GetAdditionalPrices() {
		field := fmt.Sprintf("product.additional_prices[%d]", i)
		if money.Sign(m) < 0 {
			return apierr.Invalid(field, "must not be negative")
		}
		if seen[m.GetCurrencyCode()] {
			return apierr.Invalid(field, "a second price in "+m.GetCurrencyCode())
		}
		seen[m.GetCurrencyCode()] = true
	}
	return nil
}

func (c *Catalog) event(ctx context.Context, tenant string, eventType eventv1.Type[*productv1.ProductChanged], p *Product, at time.Time) ([]byte, error) {
	_, data, err := c.publisher.Envelope(ctx, eventType.Of(&productv1.ProductChanged{Product: p}), tenant, "", at)
	return data, err
}

// priceIn is the product's price in a currency: its list price or one of its price book's.
func priceIn(p *Product, currency string) *typev1.Money {
	if p.GetPrice().GetCurrencyCode() == currency {
		return p.GetPrice()
	}
	for _, m := range p.GetAdditionalPrices() {
		if m.GetCurrencyCode() == currency {
			return m
		}
	}
	return nil
}
