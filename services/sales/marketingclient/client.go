// Package marketingclient reads marketing's leads for sales over gRPC: traced, with a deadline,
// the caller's credential forwarded (all by the shared connection), and retried on UNAVAILABLE
// because reading a lead is idempotent.
package marketingclient

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/sales"
)

// attempts and backoff bound the retries of a read while marketing is briefly unavailable.
const (
	attempts = 3
	backoff  = 50 * time.Millisecond
)

// Client implements sales.LeadReader.
type Client struct {
	marketing marketingv1.MarketingServiceClient
}

var _ sales.LeadReader = (*Client)(nil)

// New returns a client over the shared connection to marketing.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{marketing: marketingv1.NewMarketingServiceClient(conn)}
}

// GetLead implements sales.LeadReader.
func (c *Client) GetLead(ctx context.Context, id string) (*marketingv1.Lead, error) {
	var err error
	for i := range attempts {
		var resp *marketingv1.GetLeadResponse
		resp, err = c.marketing.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id})
		if err == nil {
			return resp.GetLead(), nil
		}
		if status.Code(err) != codes.Unavailable || i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, sales.ErrMarketingUnavailable.Wrap(ctx.Err())
		case <-time.After(backoff << i):
		}
	}
	switch status.Code(err) {
	case codes.NotFound:
		return nil, sales.ErrLeadNotFound
	case codes.PermissionDenied:
		return nil, errMarketingDenied
	}
	return nil, sales.ErrMarketingUnavailable.Wrap(err)
}
