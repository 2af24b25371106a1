package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// CreatePipeline implements salesv1.SalesServiceServer.
func (s *Server) CreatePipeline(ctx context.Context, req *salesv1.CreatePipelineRequest) (*salesv1.CreatePipelineResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.uc.Pipelines.Create(ctx, tenant, req.GetPipeline())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreatePipelineResponse{Pipeline: p}, nil
}

// GetPipeline implements salesv1.SalesServiceServer.
func (s *Server) GetPipeline(ctx context.Context, req *salesv1.GetPipelineRequest) (*salesv1.GetPipelineResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.uc.Pipelines.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetPipelineResponse{Pipeline: p}, nil
}

// ListPipelines implements salesv1.SalesServiceServer.
func (s *Server) ListPipelines(ctx context.Context, req *salesv1.ListPipelinesRequest) (*salesv1.ListPipelinesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListPipelines", "")
	q, err := query(list, sales.Index{}, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	pipelines, err := s.uc.Pipelines.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListPipelinesResponse{Pipelines: pipelines.Items, NextPageToken: list.Token(pipelines.Next)}, nil
}

// UpdatePipeline implements salesv1.SalesServiceServer.
func (s *Server) UpdatePipeline(ctx context.Context, req *salesv1.UpdatePipelineRequest) (*salesv1.UpdatePipelineResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.uc.Pipelines.Update(ctx, tenant, req.GetPipeline(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &salesv1.UpdatePipelineResponse{Pipeline: p}, nil
}

// CreateOpportunity implements salesv1.SalesServiceServer.
func (s *Server) CreateOpportunity(ctx context.Context, req *salesv1.CreateOpportunityRequest) (*salesv1.CreateOpportunityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Opportunities.Create(ctx, tenant, req.GetOpportunity())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreateOpportunityResponse{Opportunity: o}, nil
}

// GetOpportunity implements salesv1.SalesServiceServer.
func (s *Server) GetOpportunity(ctx context.Context, req *salesv1.GetOpportunityRequest) (*salesv1.GetOpportunityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Opportunities.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetOpportunityResponse{Opportunity: o}, nil
}

// ListOpportunities implements salesv1.SalesServiceServer.
func (s *Server) ListOpportunities(ctx context.Context, req *salesv1.ListOpportunitiesRequest) (*salesv1.ListOpportunitiesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := sales.ParseOpportunityFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListOpportunities", req.GetFilter())
	q, err := query(list, index, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	opps, err := s.uc.Opportunities.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListOpportunitiesResponse{Opportunities: opps.Items, NextPageToken: list.Token(opps.Next)}, nil
}

// UpdateOpportunity implements salesv1.SalesServiceServer.
func (s *Server) UpdateOpportunity(ctx context.Context, req *salesv1.UpdateOpportunityRequest) (*salesv1.UpdateOpportunityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Opportunities.Update(ctx, tenant, req.GetOpportunity(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &salesv1.UpdateOpportunityResponse{Opportunity: o}, nil
}

// AddLineItem implements salesv1.SalesServiceServer.
func (s *Server) AddLineItem(ctx context.Context, req *salesv1.AddLineItemRequest) (*salesv1.AddLineItemResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, line, err := s.uc.Opportunities.AddLineItem(ctx, tenant, req.GetOpportunityId(), req.GetLineItem())
	if err != nil {
		return nil, err
	}
	return &salesv1.AddLineItemResponse{Opportunity: o, LineItem: line}, nil
}

// MoveOpportunityStage implements salesv1.SalesServiceServer.
func (s *Server) MoveOpportunityStage(ctx context.Context, req *salesv1.MoveOpportunityStageRequest) (*salesv1.MoveOpportunityStageResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Opportunities.Move(ctx, tenant, req.GetId(), req.GetStage(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &salesv1.MoveOpportunityStageResponse{Opportunity: o}, nil
}

// WinOpportunity implements salesv1.SalesServiceServer.
func (s *Server) WinOpportunity(ctx context.Context, req *salesv1.WinOpportunityRequest) (*salesv1.WinOpportunityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, order, err := s.uc.Opportunities.Win(ctx, tenant, req.GetId(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &salesv1.WinOpportunityResponse{Opportunity: o, Order: order}, nil
}

// LoseOpportunity implements salesv1.SalesServiceServer.
func (s *Server) LoseOpportunity(ctx context.Context, req *salesv1.LoseOpportunityRequest) (*salesv1.LoseOpportunityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Opportunities.Lose(ctx, tenant, req.GetId(), req.GetReason(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &salesv1.LoseOpportunityResponse{Opportunity: o}, nil
}

// GetForecast implements salesv1.SalesServiceServer.
func (s *Server) GetForecast(ctx context.Context, req *salesv1.GetForecastRequest) (*salesv1.GetForecastResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.uc.Forecasts.Get(ctx, tenant, req.GetPeriod(), req.GetOwnerId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetForecastResponse{Forecast: f}, nil
}

// Series defaults: three quarters back and one ahead, when the request sets neither.
const (
	defaultPastQuarters = 3
	defaultNextQuarters = 1
)

// GetForecastSeries implements salesv1.SalesServiceServer.
func (s *Server) GetForecastSeries(ctx context.Context, req *salesv1.GetForecastSeriesRequest) (*salesv1.GetForecastSeriesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	past, next := int(req.GetPastQuarters()), int(req.GetNextQuarters())
	if req.PastQuarters == nil && req.NextQuarters == nil {
		past, next = defaultPastQuarters, defaultNextQuarters
	}
	fs, err := s.uc.Forecasts.Series(ctx, tenant, past, next, req.GetOwnerId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetForecastSeriesResponse{Forecasts: fs}, nil
}
