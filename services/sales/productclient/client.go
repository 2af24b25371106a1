// Package productclient prices sales' line items through the product service's QuoteLineItems
// over gRPC: traced, with a deadline and the caller's credential (all by the shared connection),
// retried on UNAVAILABLE because a quote is a read.
package productclient

import (
	"context"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

const (
	attempts = 3
	backoff  = 50 * time.Millisecond
)

// Client implements sales.Pricer.
type Client struct {
	product productv1.ProductServiceClient
}

var _ sales.Pricer = (*Client)(nil)

// New returns a client over the shared connection to product.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{product: productv1.NewProductServiceClient(conn)}
}

// Price implements sales.Pricer.
func (c *Client) Price(ctx context.Context, currency string, lines []*sales.OrderLine) ([]*sales.OrderLine, error) {
	req := &productv1.QuoteLineItemsRequest{CurrencyCode: currency}
	for _, l := range lines {
		req.Items = append(req.Items, &productv1.QuoteItem{ProductId: l.GetProductId(), Quantity: l.GetQuantity(), DiscountPercent: l.GetDiscountPercent()})
	}
	resp, err := c.quote(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp.GetLines()) != len(lines) {
		return nil, sales.ErrProductUnavailable
	}
	out := make([]*sales.OrderLine, len(lines))
	for i, q := range resp.GetLines() {
		out[i] = &salesv1.OrderLine{
			ProductId: q.GetProductId(), Quantity: q.GetQuantity(), Sku: q.GetSku(), DisplayName: q.GetDisplayName(),
			UnitPrice: q.GetUnitPrice(), DiscountPercent: q.GetDiscountPercent(), Total: q.GetTotal(),
			Recurring: q.GetBillingPeriod() == productv1.BillingPeriod_BILLING_PERIOD_MONTHLY ||
				q.GetBillingPeriod() == productv1.BillingPeriod_BILLING_PERIOD_YEARLY,
		}
	}
	return out, nil
}

func (c *Client) quote(ctx context.Context, req *productv1.QuoteLineItemsRequest) (*productv1.QuoteLineItemsResponse, error) {
	var err error
	for i := range attempts {
		var resp *productv1.QuoteLineItemsResponse
		if resp, err = c.product.QuoteLineItems(ctx, req); err == nil {
			return resp, nil
		}
		if status.Code(err) != codes.Unavailable || i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, sales.ErrProductUnavailable.Wrap(ctx.Err())
		case <-time.After(backoff << i):
		}
	}
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.NotFound, codes.InvalidArgument:
		// The product service's message names the line; it is written for clients. The line's
		// number goes on, for the caller to name the field of its own request.
		st := status.Convert(err)
		e := *sales.ErrNotSellable
		e.Message = st.Message()
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["line"] != "" {
				return nil, e.With(sales.NotSellableLine, info.GetMetadata()["line"])
			}
		}
		return nil, &e
	case codes.PermissionDenied:
		return nil, sales.ErrProductScope.Wrap(err)
	}
	return nil, sales.ErrProductUnavailable.Wrap(err)
}
