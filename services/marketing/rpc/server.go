// Package rpc is marketing's gRPC adapter: it turns requests into use-case calls and results into
// responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/pagetoken"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// Server implements marketingv1.MarketingServiceServer.
type Server struct {
	marketingv1.UnimplementedMarketingServiceServer
	leads  *marketing.Leads
	tokens *pagetoken.Codec
}

// New returns the adapter over the use cases.
func New(leads *marketing.Leads, tokens *pagetoken.Codec) *Server {
	return &Server{leads: leads, tokens: tokens}
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
	index, err := marketing.ParseLeadFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	// A token continues exactly the list it came from: same tenant, same filter.
	binding := tenant + "\x00ListLeads\x00" + req.GetFilter()
	q := marketing.LeadQuery{Index: index, Limit: pageSize(req.GetPageSize())}
	if req.GetPageToken() != "" {
		if q.After, err = s.tokens.Decode(binding, req.GetPageToken()); err != nil {
			return nil, err
		}
	}
	leads, next, err := s.leads.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	resp := &marketingv1.ListLeadsResponse{Leads: leads}
	if next != "" {
		resp.NextPageToken = s.tokens.Encode(binding, next)
	}
	return resp, nil
}

func pageSize(n int32) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}
