// Package rpc is marketing's gRPC adapter: it turns requests into use-case calls and results into
// responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// Server implements marketingv1.MarketingServiceServer.
type Server struct {
	marketingv1.UnimplementedMarketingServiceServer
	leads     *marketing.Leads
	customers *marketing.Customers
	campaigns *marketing.Campaigns
	loyalty   *marketing.Loyalty
	referrals *marketing.Referrals
	scoring   *marketing.Scoring
	lifecycle *marketing.Lifecycle
	segments  *marketing.Segments
	audit     events.Recorder
	imports   *importer.Runner
	tokens    *pagetoken.Codec
}

// UseCases are the marketing use cases the adapter exposes.
type UseCases struct {
	Leads     *marketing.Leads
	Customers *marketing.Customers
	Campaigns *marketing.Campaigns
	Loyalty   *marketing.Loyalty
	Referrals *marketing.Referrals
	Scoring   *marketing.Scoring
	Lifecycle *marketing.Lifecycle
	Segments  *marketing.Segments
	// Audit records exports in the tenant's event history.
	Audit events.Recorder
	// Imports runs imports and serves their operations.
	Imports *importer.Runner
}

// New returns the adapter over the use cases.
func New(uc UseCases, tokens *pagetoken.Codec) *Server {
	return &Server{leads: uc.Leads, customers: uc.Customers, campaigns: uc.Campaigns, loyalty: uc.Loyalty, referrals: uc.Referrals,
		scoring: uc.Scoring, lifecycle: uc.Lifecycle,
		segments: uc.Segments, audit: uc.Audit, imports: uc.Imports, tokens: tokens}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(r, s) }

// CaptureLead implements marketingv1.MarketingServiceServer.
func (s *Server) CaptureLead(ctx context.Context, req *marketingv1.CaptureLeadRequest) (*marketingv1.CaptureLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.leads.Capture(ctx, tenant, req.GetLead())
	if err != nil {
		return nil, err
	}
	return &marketingv1.CaptureLeadResponse{Lead: lead}, nil
}

// GetLead implements marketingv1.MarketingServiceServer.
func (s *Server) GetLead(ctx context.Context, req *marketingv1.GetLeadRequest) (*marketingv1.GetLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.leads.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLeadResponse{Lead: lead}, nil
}

// ListLeads implements marketingv1.MarketingServiceServer.
func (s *Server) ListLeads(ctx context.Context, req *marketingv1.ListLeadsRequest) (*marketingv1.ListLeadsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	q, err := marketing.ParseLeadList(req.GetFilter(), req.GetOrderBy())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListLeads", req.GetFilter()+"\x00"+req.GetOrderBy())
	q.Limit = pagesize.Of(req.GetPageSize())
	if q.After, err = list.Cursor(req.GetPageToken()); err != nil {
		return nil, err
	}
	leads, err := s.leads.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &marketingv1.ListLeadsResponse{Leads: leads.Items, NextPageToken: list.Token(leads.Next)}, nil
}

// UpdateLead implements marketingv1.MarketingServiceServer.
func (s *Server) UpdateLead(ctx context.Context, req *marketingv1.UpdateLeadRequest) (*marketingv1.UpdateLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.leads.Update(ctx, tenant, req.GetLead(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &marketingv1.UpdateLeadResponse{Lead: lead}, nil
}

// DeleteLead implements marketingv1.MarketingServiceServer.
func (s *Server) DeleteLead(ctx context.Context, req *marketingv1.DeleteLeadRequest) (*marketingv1.DeleteLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.leads.Erase(ctx, tenant, req.GetId(), req.GetEtag()); err != nil {
		return nil, err
	}
	return &marketingv1.DeleteLeadResponse{}, nil
}

func (s *Server) list(tenant, method, filter string) pagetoken.List {
	return s.tokens.List(tenant, method, filter)
}
