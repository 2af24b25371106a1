package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// CreateCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) CreateCampaign(ctx context.Context, req *marketingv1.CreateCampaignRequest) (*marketingv1.CreateCampaignResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.campaigns.Create(ctx, tenant, req.GetCampaign())
	if err != nil {
		return nil, err
	}
	return &marketingv1.CreateCampaignResponse{Campaign: c}, nil
}

// GetCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) GetCampaign(ctx context.Context, req *marketingv1.GetCampaignRequest) (*marketingv1.GetCampaignResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.campaigns.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetCampaignResponse{Campaign: c}, nil
}

// ListCampaigns implements marketingv1.MarketingServiceServer.
func (s *Server) ListCampaigns(ctx context.Context, req *marketingv1.ListCampaignsRequest) (*marketingv1.ListCampaignsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := marketing.ParseCampaignFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListCampaigns", req.GetFilter())
	q := marketing.CampaignQuery{Index: index, Request: page.Request{Limit: pagesize.Of(req.GetPageSize())}}
	if q.After, err = list.Cursor(req.GetPageToken()); err != nil {
		return nil, err
	}
	campaigns, err := s.campaigns.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &marketingv1.ListCampaignsResponse{Campaigns: campaigns.Items, NextPageToken: list.Token(campaigns.Next)}, nil
}

// UpdateCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) UpdateCampaign(ctx context.Context, req *marketingv1.UpdateCampaignRequest) (*marketingv1.UpdateCampaignResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.campaigns.Update(ctx, tenant, req.GetCampaign(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &marketingv1.UpdateCampaignResponse{Campaign: c}, nil
}

// LaunchCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) LaunchCampaign(ctx context.Context, req *marketingv1.LaunchCampaignRequest) (*marketingv1.LaunchCampaignResponse, error) {
	c, err := s.move(ctx, req.GetId(), req.GetEtag(), marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE)
	if err != nil {
		return nil, err
	}
	return &marketingv1.LaunchCampaignResponse{Campaign: c}, nil
}

// PauseCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) PauseCampaign(ctx context.Context, req *marketingv1.PauseCampaignRequest) (*marketingv1.PauseCampaignResponse, error) {
	c, err := s.move(ctx, req.GetId(), req.GetEtag(), marketingv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED)
	if err != nil {
		return nil, err
	}
	return &marketingv1.PauseCampaignResponse{Campaign: c}, nil
}

// CompleteCampaign implements marketingv1.MarketingServiceServer.
func (s *Server) CompleteCampaign(ctx context.Context, req *marketingv1.CompleteCampaignRequest) (*marketingv1.CompleteCampaignResponse, error) {
	c, err := s.move(ctx, req.GetId(), req.GetEtag(), marketingv1.CampaignStatus_CAMPAIGN_STATUS_COMPLETED)
	if err != nil {
		return nil, err
	}
	return &marketingv1.CompleteCampaignResponse{Campaign: c}, nil
}

func (s *Server) move(ctx context.Context, id, ifMatch string,
	to marketingv1.CampaignStatus) (*marketing.Campaign, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	return s.campaigns.Move(ctx, tenant, id, ifMatch, to)
}

// GetCampaignPerformance implements marketingv1.MarketingServiceServer.
func (s *Server) GetCampaignPerformance(ctx context.Context, req *marketingv1.GetCampaignPerformanceRequest) (*marketingv1.GetCampaignPerformanceResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.campaigns.Performance(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetCampaignPerformanceResponse{Performance: p}, nil
}
