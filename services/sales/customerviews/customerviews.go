// Package customerviews reads the other services' sides of a customer for sales' customer 360:
// marketing's lifecycle and loyalty, product's subscriptions and adoption, support's tickets,
// integration's timeline. Each
// call goes over the shared, traced connection with the caller's credential; reads are not
// retried here, because the 360 has one deadline for the whole fan-out and shows a missing
// section rather than waiting.
package customerviews

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/sales"
)

var (
	_ sales.MarketingView = Marketing{}
	_ sales.ProductView   = Product{}
	_ sales.SupportView   = Support{}
	_ sales.TimelineView  = Timeline{}
)

// Marketing reads a customer's lifecycle and loyalty.
type Marketing struct {
	client marketingv1.MarketingServiceClient
}

// NewMarketing returns the view over the connection to marketing.
func NewMarketing(conn grpc.ClientConnInterface) Marketing {
	return Marketing{client: marketingv1.NewMarketingServiceClient(conn)}
}

// Lifecycle implements sales.MarketingView.
func (m Marketing) Lifecycle(ctx context.Context, customer string) (*marketingv1.CustomerLifecycle, error) {
	resp, err := m.client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
	return resp.GetLifecycle(), classify(err)
}

// Loyalty implements sales.MarketingView.
func (m Marketing) Loyalty(ctx context.Context, customer string) (*marketingv1.LoyaltyAccount, error) {
	resp, err := m.client.GetLoyaltyAccount(ctx, &marketingv1.GetLoyaltyAccountRequest{CustomerId: customer})
	return resp.GetAccount(), classify(err)
}

// Product reads a customer's subscriptions, entitlements and adoption.
type Product struct {
	client productv1.ProductServiceClient
}

// NewProduct returns the view over the connection to product.
func NewProduct(conn grpc.ClientConnInterface) Product {
	return Product{client: productv1.NewProductServiceClient(conn)}
}

// Subscriptions implements sales.ProductView.
func (p Product) Subscriptions(ctx context.Context, customer string, limit int) ([]*productv1.Subscription, error) {
	resp, err := p.client.ListSubscriptions(ctx, &productv1.ListSubscriptionsRequest{
		Filter: fmt.Sprintf("customer_id = %q", customer), PageSize: int32(limit)})
	return resp.GetSubscriptions(), classify(err)
}

// Entitlements implements sales.ProductView.
func (p Product) Entitlements(ctx context.Context, customer string, limit int) ([]*productv1.Entitlement, error) {
	resp, err := p.client.ListEntitlements(ctx, &productv1.ListEntitlementsRequest{CustomerId: customer, PageSize: int32(limit)})
	return resp.GetEntitlements(), classify(err)
}

// Adoption implements sales.ProductView.
func (p Product) Adoption(ctx context.Context, customer string) (*productv1.Adoption, error) {
	resp, err := p.client.GetCustomerAdoption(ctx, &productv1.GetCustomerAdoptionRequest{CustomerId: customer})
	return resp.GetAdoption(), classify(err)
}

// Support reads a customer's tickets.
type Support struct {
	client supportv1.SupportServiceClient
}

// NewSupport returns the view over the connection to support.
func NewSupport(conn grpc.ClientConnInterface) Support {
	return Support{client: supportv1.NewSupportServiceClient(conn)}
}

// Tickets implements sales.SupportView.
func (s Support) Tickets(ctx context.Context, customer string, limit int) ([]*supportv1.Ticket, error) {
	resp, err := s.client.ListTickets(ctx, &supportv1.ListTicketsRequest{
		Filter: fmt.Sprintf("customer_id = %q", customer), PageSize: int32(limit)})
	return resp.GetTickets(), classify(err)
}

// NpsResponses implements sales.SupportView.
func (s Support) NpsResponses(ctx context.Context, customer string, limit int) ([]*supportv1.NpsResponse, error) {
	resp, err := s.client.ListNpsResponses(ctx, &supportv1.ListNpsResponsesRequest{
		Filter: fmt.Sprintf("customer_id = %q", customer), PageSize: int32(limit)})
	return resp.GetNpsResponses(), classify(err)
}

// Timeline reads a customer's latest events from the integration service.
type Timeline struct {
	client  integrationv1.IntegrationServiceClient
	dialErr error
}

// NewTimeline returns the view over the connection to integration; dialErr, when the process
// knows no address for it, makes every read unavailable.
func NewTimeline(conn grpc.ClientConnInterface, dialErr error) Timeline {
	if dialErr != nil {
		return Timeline{dialErr: dialErr}
	}
	return Timeline{client: integrationv1.NewIntegrationServiceClient(conn)}
}

// Latest implements sales.TimelineView.
func (t Timeline) Latest(ctx context.Context, customer string, limit int) ([]*integrationv1.TimelineEntry, error) {
	if t.dialErr != nil {
		return nil, fmt.Errorf("%w: %w", sales.ErrServiceUnavailable, t.dialErr)
	}
	resp, err := t.client.ListTimeline(ctx, &integrationv1.ListTimelineRequest{CustomerId: customer, PageSize: int32(limit)})
	return resp.GetTimelineEntries(), classify(err)
}

// classify turns a peer's status into what the 360 distinguishes: not known (an empty, available
// section), a deadline, or an unavailable service.
func classify(err error) error {
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound:
		return sales.ErrNotKnown
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %w", sales.ErrSectionForbidden, err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("%w: %w", sales.ErrServiceUnavailable, err)
}
