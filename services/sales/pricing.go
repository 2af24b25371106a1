package sales

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/money"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Errors of pricing through the product service.
var (
	ErrNotSellable = apierr.New(apierr.FailedPrecondition, "PRODUCT_NOT_SELLABLE",
		"a product is missing, archived or has no price in the currency")
	ErrProductUnavailable = apierr.New(apierr.Unavailable, "PRODUCT_UNAVAILABLE", "the product service cannot price the lines right now; retry")
	// ErrProductScope is the caller's key lacking product.read: the lines are priced with the
	// caller's own credential, as every call between services is, so a retry cannot help.
	ErrProductScope = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE",
		"the lines are priced by the product service with the caller's key: the API key needs the product.read scope").
		With("scope", "product.read")
)

// NotSellableLine is the metadata of ErrNotSellable that holds the number of the line (from 0)
// that cannot be sold.
const NotSellableLine = "line"

// notSellableField names, in an ErrNotSellable from the Pricer, the request's field of the line
// that cannot be sold: field gives it from the line's number.
func notSellableField(err error, field func(line string) string) error {
	e, ok := apierr.As(err)
	if !ok || !errors.Is(err, ErrNotSellable) || e.Metadata[NotSellableLine] == "" {
		return err
	}
	c := *e
	c.Fields = []apierr.FieldViolation{{Field: field(e.Metadata[NotSellableLine]), Description: e.Message}}
	return &c
}

// Pricer prices lines at the catalog's current prices: it fills each line's SKU, name, unit
// price, total and recurring flag. ErrNotSellable (with the product's explanation) or
// ErrProductUnavailable.
type Pricer interface {
	Price(ctx context.Context, currency string, lines []*OrderLine) ([]*OrderLine, error)
}

// linesTotal sums the lines' totals, exactly: ErrAmountTooLarge beyond what a Money holds.
func linesTotal(currency string, lines []*OrderLine) (*typev1.Money, error) {
	totals := make([]*typev1.Money, len(lines))
	for i, l := range lines {
		totals[i] = l.GetTotal()
	}
	sum, err := money.Sum(currency, totals...)
	if errors.Is(err, money.ErrOutOfRange) {
		return nil, ErrAmountTooLarge
	}
	return sum, err
}

// requestLines keeps only what a client may set on a line: the price comes from the catalog.
func requestLines(lines []*OrderLine) []*OrderLine {
	out := make([]*OrderLine, len(lines))
	for i, l := range lines {
		out[i] = &OrderLine{ProductId: l.GetProductId(), Quantity: l.GetQuantity(), DiscountPercent: l.GetDiscountPercent()}
	}
	return out
}
