package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// ResolveCustomer implements marketingv1.MarketingServiceServer.
func (s *Server) ResolveCustomer(ctx context.Context, req *marketingv1.ResolveCustomerRequest) (*marketingv1.ResolveCustomerResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.customers.Resolve(ctx, tenant, resolveRequest(req))
	if err != nil {
		return nil, err
	}
	return &marketingv1.ResolveCustomerResponse{Customer: r}, nil
}

// ResolveCustomers implements marketingv1.MarketingServiceServer.
func (s *Server) ResolveCustomers(ctx context.Context, req *marketingv1.ResolveCustomersRequest) (*marketingv1.ResolveCustomersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	reqs := make([]marketing.ResolveRequest, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		reqs[i] = resolveRequest(r)
	}
	out, err := s.customers.ResolveMany(ctx, tenant, reqs)
	if err != nil {
		return nil, err
	}
	return &marketingv1.ResolveCustomersResponse{Customers: out}, nil
}

// GetCustomerIdentity implements marketingv1.MarketingServiceServer.
func (s *Server) GetCustomerIdentity(ctx context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.customers.Get(ctx, tenant, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetCustomerIdentityResponse{Customer: c}, nil
}

// MergeCustomers implements marketingv1.MarketingServiceServer.
func (s *Server) MergeCustomers(ctx context.Context, req *marketingv1.MergeCustomersRequest) (*marketingv1.MergeCustomersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.customers.Merge(ctx, tenant, req.GetCustomerId(), req.GetMergedCustomerId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.MergeCustomersResponse{Customer: c}, nil
}

func resolveRequest(r *marketingv1.ResolveCustomerRequest) marketing.ResolveRequest {
	return marketing.ResolveRequest{Email: r.GetEmail(), ExternalID: r.GetExternalId(), Create: r.GetCreate(), Origin: r.GetOrigin(),
		CustomerID: r.GetCustomerId()}
}

// ofSurvivor reads a customer's record with read; when there is none and the customer was merged,
// it reads the survivor's instead (whose id the answer carries): a merge moves the merged
// customer's records to the survivor, and a caller holding the old id still finds them. Writes
// about a merged customer are refused naming the survivor instead (CUSTOMER_MERGED).
func ofSurvivor[T any](ctx context.Context, customers *marketing.Customers, tenant, id string, read func(id string) (T, error)) (T, error) {
	v, err := read(id)
	if e, ok := apierr.As(err); !ok || e.Kind != apierr.NotFound {
		return v, err
	}
	survivor, serr := customers.Survivor(ctx, tenant, id)
	if serr != nil || survivor == "" {
		return v, err
	}
	return read(survivor)
}
