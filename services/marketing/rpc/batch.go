package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/grpcserver"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// BatchGetCampaigns implements marketingv1.MarketingServiceServer.
func (s *Server) BatchGetCampaigns(ctx context.Context, req *marketingv1.BatchGetCampaignsRequest) (*marketingv1.BatchGetCampaignsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	campaigns, err := s.campaigns.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &marketingv1.BatchGetCampaignsResponse{Campaigns: campaigns}, nil
}

// BatchGetLeads implements marketingv1.MarketingServiceServer.
func (s *Server) BatchGetLeads(ctx context.Context, req *marketingv1.BatchGetLeadsRequest) (*marketingv1.BatchGetLeadsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	leads, err := s.leads.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &marketingv1.BatchGetLeadsResponse{Leads: leads}, nil
}

// BatchGetSegments implements marketingv1.MarketingServiceServer.
func (s *Server) BatchGetSegments(ctx context.Context, req *marketingv1.BatchGetSegmentsRequest) (*marketingv1.BatchGetSegmentsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	segments, err := s.segments.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &marketingv1.BatchGetSegmentsResponse{Segments: segments}, nil
}

// BatchCreateLeads implements marketingv1.MarketingServiceServer: each item is a capture, with its
// own result (Leads.CaptureMany).
func (s *Server) BatchCreateLeads(ctx context.Context, req *marketingv1.BatchCreateLeadsRequest) (*marketingv1.BatchCreateLeadsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	ins := make([]*marketingv1.Lead, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		ins[i] = r.GetLead()
	}
	leads, errs := s.leads.CaptureMany(ctx, tenant, ins)
	statuses, err := grpcserver.ItemStatuses(ctx, errs)
	if err != nil {
		return nil, err
	}
	out := &marketingv1.BatchCreateLeadsResponse{Results: make([]*marketingv1.BatchCreateLeadsResult, len(leads))}
	for i, lead := range leads {
		out.Results[i] = &marketingv1.BatchCreateLeadsResult{Lead: lead, Error: statuses[i]}
	}
	return out, nil
}
