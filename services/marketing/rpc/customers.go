package rpc

import (
	"context"
	"slices"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/grpcserver"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// ResolveCustomer implements marketingv1.MarketingServiceServer.
func (s *Server) ResolveCustomer(ctx context.Context, req *marketingv1.ResolveCustomerRequest) (*marketingv1.ResolveCustomerResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	rr := resolveRequest(req)
	if err := mayRegister(ctx, rr); err != nil {
		return nil, err
	}
	r, err := s.customers.Resolve(ctx, tenant, rr)
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
		if err := mayRegister(ctx, reqs[i]); err != nil {
			return nil, err
		}
	}
	out, refused, err := s.customers.ResolveMany(ctx, tenant, reqs)
	if err != nil {
		return nil, err
	}
	statuses, err := grpcserver.ItemStatuses(ctx, refused)
	if err != nil {
		return nil, err
	}
	for i, st := range statuses {
		out[i].Error = st
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

// registeringScopes are the scopes of which a resolution that may change the registry (create, or
// attach an e-mail to a customer) needs one: marketing's write scope, or the write scope of a
// service that resolves people for its own writes with its caller's key (a contact, a ticket, an
// order). A lookup alone is a read (marketing.read, as the method's scope says).
var registeringScopes = []string{"marketing.write", "sales.write", "support.write", "product.write"}

var errMayNotRegister = apierr.New(apierr.PermissionDenied, auth.ErrMissingScope.Reason,
	"registering a person or attaching an e-mail to a customer needs a write scope ("+strings.Join(registeringScopes, ", ")+
		"); this key may only look people up (without create or customerId)").With("scope", strings.Join(registeringScopes, " "))

// mayRegister refuses, with MISSING_SCOPE naming the scopes, a resolution that may register a
// person or attach an e-mail when the caller's key may write nothing about people: a read-only key
// must not change who a customer is.
func mayRegister(ctx context.Context, r marketing.ResolveRequest) error {
	if !r.Create && r.CustomerID == "" {
		return nil
	}
	p, _ := auth.FromContext(ctx)
	if slices.ContainsFunc(registeringScopes, p.Allows) {
		return nil
	}
	return errMayNotRegister
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

// EraseCustomer implements marketingv1.MarketingServiceServer.
func (s *Server) EraseCustomer(ctx context.Context, req *marketingv1.EraseCustomerRequest) (*marketingv1.EraseCustomerResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.leads.EraseCustomer(ctx, tenant, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	out := &marketingv1.EraseCustomerResponse{}
	for _, c := range append([]*marketing.Customer{e.Person}, e.Merged...) {
		if c != nil {
			out.CustomerIds = append(out.CustomerIds, c.GetId())
		}
	}
	for _, lead := range e.Leads {
		out.LeadIds = append(out.LeadIds, lead.GetId())
	}
	return out, nil
}
