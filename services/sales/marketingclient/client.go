// Package marketingclient reads marketing's leads for sales over gRPC: traced, with a deadline,
// the caller's credential forwarded (all by the shared connection), and retried on UNAVAILABLE
// because reading a lead is idempotent.
package marketingclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/apierr"
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
	resp, err := retried(ctx, func() (*marketingv1.GetLeadResponse, error) {
		return c.marketing.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id})
	})
	switch status.Code(err) {
	case codes.OK:
		return resp.GetLead(), nil
	case codes.NotFound:
		return nil, sales.ErrLeadNotFound
	case codes.PermissionDenied:
		return nil, errMarketingDenied
	}
	return nil, unavailable(err)
}

// retried makes an idempotent call, again while marketing is briefly unavailable.
func retried[T any](ctx context.Context, call func() (T, error)) (T, error) {
	var (
		resp T
		err  error
	)
	for i := range attempts {
		if resp, err = call(); status.Code(err) != codes.Unavailable || i == attempts-1 {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-time.After(backoff << i):
		}
	}
	return resp, err
}

func unavailable(err error) error {
	return sales.ErrMarketingUnavailable.Wrap(err)
}

var _ sales.CustomerRegistry = (*Client)(nil)

// Find implements sales.CustomerRegistry: the customer of an external id, "" when marketing
// knows none. A read, retried like one.
func (c *Client) Find(ctx context.Context, externalID string) (string, error) {
	resp, err := retried(ctx, func() (*marketingv1.ResolveCustomerResponse, error) {
		return c.marketing.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{ExternalId: externalID})
	})
	switch status.Code(err) {
	case codes.OK:
		return resp.GetCustomer().GetCustomerId(), nil
	case codes.NotFound, codes.InvalidArgument:
		return "", nil
	case codes.PermissionDenied:
		return "", errRegistryDenied
	}
	return "", unavailable(err)
}

// Resolve implements sales.CustomerRegistry: the person's customer id from marketing's registry,
// registered as a contact's person when unknown. Resolving is idempotent (the same e-mail gives
// the same id), so it is retried like a read.
func (c *Client) Resolve(ctx context.Context, email string) (string, error) {
	resp, err := retried(ctx, func() (*marketingv1.ResolveCustomerResponse, error) {
		return c.marketing.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{
			Email: email, Create: true, Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CONTACT,
		})
	})
	switch status.Code(err) {
	case codes.OK:
		return resp.GetCustomer().GetCustomerId(), nil
	case codes.InvalidArgument:
		return "", sales.ErrInvalidEmail
	case codes.PermissionDenied:
		return "", errRegistryDenied
	}
	return "", unavailable(err)
}

// Attach implements sales.CustomerRegistry: the e-mail joins the customer in marketing's registry
// (ResolveCustomer with customer_id). Attaching twice changes nothing the second time, so it is
// retried like a read.
func (c *Client) Attach(ctx context.Context, customer, email string) (string, error) {
	resp, err := retried(ctx, func() (*marketingv1.ResolveCustomerResponse, error) {
		return c.marketing.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: email, CustomerId: customer})
	})
	switch status.Code(err) {
	case codes.OK:
		return resp.GetCustomer().GetCustomerId(), nil
	case codes.AlreadyExists:
		return "", sales.ErrEmailOfAnotherCustomer.With("customer_id", errorMetadata(err, "customer_id"))
	case codes.NotFound:
		return "", sales.ErrContactCustomerGone
	case codes.InvalidArgument:
		return "", sales.ErrInvalidEmail
	case codes.PermissionDenied:
		return "", errAttachDenied
	}
	return "", unavailable(err)
}

// errorMetadata is a value of the ErrorInfo of a status error, "" when it has none.
func errorMetadata(err error, key string) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()[key]
		}
	}
	return ""
}

// resolveDeadline bounds one ResolveCustomers call of an import: up to 1,000 people, the unknown
// ones registered one write each on marketing's side.
const resolveDeadline = 30 * time.Second

// ResolveImported implements sales.CustomerRegistry: one ResolveCustomers call (traced by the
// shared connection, under its own deadline) for up to 1,000 people, registering the unknown ones
// with origin IMPORT. Resolving is idempotent, so it is retried like a read.
func (c *Client) ResolveImported(ctx context.Context, people []sales.Person) ([]sales.Resolved, error) {
	if len(people) == 0 {
		return nil, nil
	}
	reqs := make([]*marketingv1.ResolveCustomerRequest, len(people))
	for i, p := range people {
		reqs[i] = &marketingv1.ResolveCustomerRequest{Email: p.Email, ExternalId: p.ExternalID, Create: true,
			Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT}
	}
	ctx, cancel := context.WithTimeout(ctx, resolveDeadline)
	defer cancel()
	resp, err := retried(ctx, func() (*marketingv1.ResolveCustomersResponse, error) {
		return c.marketing.ResolveCustomers(ctx, &marketingv1.ResolveCustomersRequest{Requests: reqs})
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.PermissionDenied:
		return nil, errRegistryDenied
	default:
		return nil, unavailable(err)
	}
	if len(resp.GetCustomers()) != len(people) {
		return nil, unavailable(fmt.Errorf("ResolveCustomers answered %d people for %d", len(resp.GetCustomers()), len(people)))
	}
	out := make([]sales.Resolved, len(people))
	for i, r := range resp.GetCustomers() {
		if r.GetError() != nil {
			out[i].Err = refusal(r.GetError())
			continue
		}
		out[i].CustomerID = r.GetCustomerId()
	}
	return out, nil
}

// refusal is an item's refusal in a batch answer (its google.rpc.Status) as this service's error:
// the ErrorInfo reason and the message, as marketing would answer the single call.
func refusal(st *spb.Status) *apierr.Error {
	reason := "INVALID_ARGUMENT"
	for _, d := range status.FromProto(st).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	return apierr.New(apierr.InvalidArgument, reason, st.GetMessage())
}
