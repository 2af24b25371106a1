package product

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/protoupdate"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// ProductColumns are the documented columns of a product import: sku, displayName and price are
// required; the SKU (case-insensitive, as its unique index is) is the product's natural key. price
// is "12.50 USD" (or the export's JSON money); billingPeriod a BillingPeriod name (MONTHLY or
// BILLING_PERIOD_MONTHLY, any case); features are separated by ";"; active is true or false.
// Other columns are ignored, so a file the products export wrote imports as it is.
var ProductColumns = []string{"sku", "displayName", "price", "billingPeriod", "description", "category", "productLine",
	"tier", "features", "active"}

// ProductWrite is an imported product's creation (Prev nil) or change, with its event.
type ProductWrite struct {
	Product, Prev *Product
	Event         []byte
}

// ImportStore is what imports need of the store.
type ImportStore interface {
	// ProductIDsBySKU returns the product of each SKU, any case ("" for none), in one round trip.
	ProductIDsBySKU(ctx context.Context, tenant string, skus []string) ([]string, error)
	// ImportProducts commits writes, many per round trip, each atomic with its indexes and event:
	// one error per write as CreateProduct and UpdateProduct return them.
	ImportProducts(ctx context.Context, tenant string, writes []*ProductWrite) ([]error, error)
}

// ProductImport is the product kind of an import: an upsert on the SKU.
func (c *Catalog) ProductImport(store ImportStore) importer.Kind[*Product] {
	return importer.Kind[*Product]{
		Name: "products", Columns: ProductColumns, Required: []string{"sku", "displayName", "price"},
		Parse:   c.parseProduct,
		Key:     func(p *Product) string { return strings.ToLower(p.GetSku()) },
		KeyName: "SKU",
		Apply: func(ctx context.Context, tenant string, rows []*Product) ([]importer.Outcome, error) {
			return c.importProducts(ctx, store, tenant, rows)
		},
	}
}

func (c *Catalog) parseProduct(row importer.Row) (*Product, *typev1.ImportRowError) {
	p := &Product{Sku: row.Value("sku"), DisplayName: row.Value("displayName"), Description: row.Value("description"),
		Category: row.Value("category"), ProductLine: row.Value("productLine")}
	price, err := ParsePrice(row.Value("price"))
	if err != nil {
		return nil, importer.RowError("price", importer.ReasonInvalidValue, err.Error())
	}
	p.Price = price
	if v := row.Value("billingPeriod"); v != "" {
		name := strings.ToUpper(v)
		if !strings.HasPrefix(name, "BILLING_PERIOD_") {
			name = "BILLING_PERIOD_" + name
		}
		bp, ok := productv1.BillingPeriod_value[name]
		if !ok || bp == 0 {
			return nil, importer.RowError("billingPeriod", importer.ReasonInvalidEnum, fmt.Sprintf("%q is not a billing period (ONE_TIME, MONTHLY, YEARLY)", v))
		}
		p.BillingPeriod = productv1.BillingPeriod(bp)
	}
	if v := row.Value("tier"); v != "" {
		tier, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, importer.RowError("tier", importer.ReasonInvalidValue, "must be a whole number from 0 to 100")
		}
		p.Tier = int32(tier)
	}
	if v := row.Value("active"); v != "" {
		active, err := strconv.ParseBool(v)
		if err != nil {
			return nil, importer.RowError("active", importer.ReasonInvalidValue, "must be true or false")
		}
		p.Active = proto.Bool(active)
	}
	for _, f := range row.List("features") {
		if !slices.Contains(p.Features, f) {
			p.Features = append(p.Features, f)
		}
	}
	if err := protoupdate.Validate(c.validator, "", p); err != nil {
		return nil, rowError(err)
	}
	if err := checkPrices(p); err != nil {
		return nil, rowError(err)
	}
	return p, nil
}

// rowError is a refused product as a row error; a money field is the price column.
func rowError(err error) *typev1.ImportRowError {
	e, ok := apierr.As(err)
	if !ok {
		return importer.RowError("", importer.ReasonInvalidValue, err.Error())
	}
	re := importer.RowErrorOf(importer.ReasonInvalidValue, e)
	if len(e.Fields) > 0 && strings.Contains(e.Fields[0].Field, "price") {
		re.Field = "price"
	}
	return re
}

// ParsePrice reads a price as "12.50 USD" (or "USD 12.50") or as the JSON of a Money
// ({"currencyCode":"USD","units":"12","nanos":500000000}, as the export writes it).
func ParsePrice(s string) (*typev1.Money, error) {
	if strings.HasPrefix(s, "{") {
		m := &typev1.Money{}
		if err := protojson.Unmarshal([]byte(s), m); err != nil {
			return nil, errors.New("not a money object: " + err.Error())
		}
		return m, nil
	}
	parts := strings.Fields(s)
	if len(parts) != 2 {
		return nil, errors.New(`must be an amount and a currency, such as "12.50 USD"`)
	}
	amount, currency := parts[0], parts[1]
	if len(amount) == 3 && !strings.ContainsAny(amount, "0123456789") {
		amount, currency = currency, amount
	}
	r, ok := new(big.Rat).SetString(amount)
	if !ok || strings.ContainsAny(amount, "/eE") {
		return nil, fmt.Errorf("%q is not a decimal amount", amount)
	}
	nanos := new(big.Rat).Mul(r, big.NewRat(1_000_000_000, 1))
	if !nanos.IsInt() {
		return nil, fmt.Errorf("%q has more than 9 decimals", amount)
	}
	n := nanos.Num()
	units, frac := new(big.Int).QuoRem(n, big.NewInt(1_000_000_000), new(big.Int))
	if !units.IsInt64() {
		return nil, fmt.Errorf("%q is too large", amount)
	}
	return &typev1.Money{CurrencyCode: strings.ToUpper(currency), Units: units.Int64(), Nanos: int32(frac.Int64())}, nil
}

// lostRace reports whether an imported write failed because a concurrent write came first.
func lostRace(err error) bool { return errors.Is(err, ErrStale) || errors.Is(err, ErrSKUExists) }

// importProducts upserts a batch of products with distinct SKUs: a new SKU makes a product
// (active unless the row says otherwise); a known one gets the row's name and price and its other
// non-empty values; a product that holds them all is skipped, writing nothing, and an archived
// one it would change is the row's error. Each round reads the batch in two round trips and
// writes it in one.
func (c *Catalog) importProducts(ctx context.Context, store ImportStore, tenant string, rows []*Product) ([]importer.Outcome, error) {
	return importer.Upsert(ctx, len(rows), importer.Rounds[ProductWrite]{
		KeyField: "sku",
		Lost:     lostRace,
		Commit: func(ctx context.Context, writes []*ProductWrite) ([]error, error) {
			return store.ImportProducts(ctx, tenant, writes)
		},
		Plan: func(ctx context.Context, todo []int) ([]importer.Step[ProductWrite], error) {
			skus := make([]string, len(todo))
			for j, i := range todo {
				skus[j] = rows[i].GetSku()
			}
			ids, err := store.ProductIDsBySKU(ctx, tenant, skus)
			if err != nil {
				return nil, err
			}
			var known []string
			for _, id := range ids {
				if id != "" {
					known = append(known, id)
				}
			}
			found, err := c.store.GetProducts(ctx, tenant, known)
			if err != nil {
				return nil, err
			}
			byID := make(map[string]*Product, len(found))
			for _, p := range found {
				if p != nil {
					byID[p.GetId()] = p
				}
			}
			now := c.now().UTC()
			steps := make([]importer.Step[ProductWrite], len(todo))
			for j, i := range todo {
				in, prev := rows[i], byID[ids[j]]
				s := importer.Step[ProductWrite]{Row: i, Key: strings.ToLower(in.GetSku())}
				var next *Product
				event := productv1.EventProductCreated
				if prev == nil {
					next = proto.CloneOf(in)
					next.Id = uuid.Must(uuid.NewV7()).String()
					next.CreateTime, next.UpdateTime, next.Etag = timestamppb.New(now), timestamppb.New(now), etag.First
					if next.Active == nil {
						next.Active = proto.Bool(true)
					}
					s.Planned = importer.Created
				} else {
					next = importedInto(prev, in)
					if proto.Equal(next, prev) {
						s.Outcome, s.ID, s.Etag, s.Updated = importer.Outcome{Result: importer.Skipped}, prev.GetId(), prev.GetEtag(), prev.GetUpdateTime().AsTime()
						steps[j] = s
						continue
					}
					if prev.GetArchiveTime() != nil {
						s.Outcome = importer.Outcome{Err: importer.RowError("sku", importer.ReasonConflict, "the product with this SKU is archived")}
						steps[j] = s
						continue
					}
					next.UpdateTime, next.Etag = timestamppb.New(now), etag.Next(prev.GetEtag())
					s.Planned, event = importer.Updated, productv1.EventProductUpdated
				}
				ev, err := c.event(ctx, tenant, event, next, now)
				if err != nil {
					return nil, err
				}
				s.Write, s.ID, s.Etag, s.Updated = &ProductWrite{Product: next, Prev: prev, Event: ev}, next.GetId(), next.GetEtag(), next.GetUpdateTime().AsTime()
				steps[j] = s
			}
			return steps, nil
		},
	})
}

// importedInto is prev with the row's name and price and its other non-empty values (the SKU, as
// first written, stays).
func importedInto(prev, in *Product) *Product {
	next := proto.CloneOf(prev)
	next.DisplayName, next.Price = in.GetDisplayName(), in.GetPrice()
	for _, f := range []struct {
		dst *string
		src string
	}{{&next.Description, in.GetDescription()}, {&next.Category, in.GetCategory()}, {&next.ProductLine, in.GetProductLine()}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if in.GetBillingPeriod() != 0 {
		next.BillingPeriod = in.GetBillingPeriod()
	}
	if in.GetTier() != 0 {
		next.Tier = in.GetTier()
	}
	if in.Active != nil {
		next.Active = in.Active
	}
	if len(in.GetFeatures()) > 0 {
		next.Features = in.GetFeatures()
	}
	return next
}
