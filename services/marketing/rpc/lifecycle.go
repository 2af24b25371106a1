package rpc

import (
	"cmp"
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// GetCustomerLifecycle implements marketingv1.MarketingServiceServer.
func (s *Server) GetCustomerLifecycle(ctx context.Context, req *marketingv1.GetCustomerLifecycleRequest) (*marketingv1.GetCustomerLifecycleResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := ofSurvivor(ctx, s.customers, tenant, req.GetCustomerId(), func(id string) (*marketing.CustomerLifecycle, error) {
		return s.lifecycle.Get(ctx, tenant, id)
	})
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetCustomerLifecycleResponse{Lifecycle: lc}, nil
}

// MoveLifecycleStage implements marketingv1.MarketingServiceServer.
func (s *Server) MoveLifecycleStage(ctx context.Context, req *marketingv1.MoveLifecycleStageRequest) (*marketingv1.MoveLifecycleStageResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := s.lifecycle.Move(ctx, tenant, req.GetCustomerId(),
		marketing.LifecycleMove{Stage: req.GetStage(), Cause: req.GetCause(), EventID: req.GetCauseEventId(),
			IfMatch: req.GetEtag()})
	if err != nil {
		return nil, err
	}
	return &marketingv1.MoveLifecycleStageResponse{Lifecycle: lc}, nil
}

// SetCustomerAtRisk implements marketingv1.MarketingServiceServer.
func (s *Server) SetCustomerAtRisk(ctx context.Context, req *marketingv1.SetCustomerAtRiskRequest) (*marketingv1.SetCustomerAtRiskResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := s.lifecycle.SetAtRisk(ctx, tenant, req.GetCustomerId(), req.GetReason(), req.GetCauseEventId(),
		req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &marketingv1.SetCustomerAtRiskResponse{Lifecycle: lc}, nil
}

// ClearCustomerAtRisk implements marketingv1.MarketingServiceServer.
func (s *Server) ClearCustomerAtRisk(ctx context.Context, req *marketingv1.ClearCustomerAtRiskRequest) (*marketingv1.ClearCustomerAtRiskResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := s.lifecycle.ClearAtRisk(ctx, tenant, req.GetCustomerId(), req.GetReason(), req.GetCauseEventId(),
		req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &marketingv1.ClearCustomerAtRiskResponse{Lifecycle: lc}, nil
}

// GetLifecycleFunnel implements marketingv1.MarketingServiceServer.
func (s *Server) GetLifecycleFunnel(ctx context.Context, req *marketingv1.GetLifecycleFunnelRequest) (*marketingv1.GetLifecycleFunnelResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.lifecycle.Funnel(ctx, tenant, req.GetPeriod())
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLifecycleFunnelResponse{Funnel: f}, nil
}

// defaultFunnelPeriods is the length of a funnel series that names none: half a year of months.
const defaultFunnelPeriods = 6

// GetLifecycleFunnelSeries implements marketingv1.MarketingServiceServer.
func (s *Server) GetLifecycleFunnelSeries(ctx context.Context, req *marketingv1.GetLifecycleFunnelSeriesRequest) (*marketingv1.GetLifecycleFunnelSeriesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	fs, err := s.lifecycle.FunnelSeries(ctx, tenant, req.GetPeriod(), cmp.Or(int(req.GetPeriods()), defaultFunnelPeriods))
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLifecycleFunnelSeriesResponse{Funnels: fs}, nil
}

// GetLifecycleSettings implements marketingv1.MarketingServiceServer.
func (s *Server) GetLifecycleSettings(ctx context.Context, _ *marketingv1.GetLifecycleSettingsRequest) (*marketingv1.GetLifecycleSettingsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.lifecycle.Settings(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLifecycleSettingsResponse{Settings: st}, nil
}

// UpdateLifecycleSettings implements marketingv1.MarketingServiceServer.
func (s *Server) UpdateLifecycleSettings(ctx context.Context, req *marketingv1.UpdateLifecycleSettingsRequest) (*marketingv1.UpdateLifecycleSettingsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.lifecycle.UpdateSettings(ctx, tenant, req.GetSettings(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &marketingv1.UpdateLifecycleSettingsResponse{Settings: st}, nil
}
