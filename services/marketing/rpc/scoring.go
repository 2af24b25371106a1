package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// RecordEngagement implements marketingv1.MarketingServiceServer.
func (s *Server) RecordEngagement(ctx context.Context, req *marketingv1.RecordEngagementRequest) (*marketingv1.RecordEngagementResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	eng, lead, err := s.leads.RecordEngagement(ctx, tenant, req.GetLeadId(), req.GetEngagement())
	if err != nil {
		return nil, err
	}
	return &marketingv1.RecordEngagementResponse{Engagement: eng, Lead: lead}, nil
}

// QualifyLead implements marketingv1.MarketingServiceServer.
func (s *Server) QualifyLead(ctx context.Context, req *marketingv1.QualifyLeadRequest) (*marketingv1.QualifyLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.leads.Qualify(ctx, tenant, req.GetId(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &marketingv1.QualifyLeadResponse{Lead: lead}, nil
}

// DisqualifyLead implements marketingv1.MarketingServiceServer.
func (s *Server) DisqualifyLead(ctx context.Context, req *marketingv1.DisqualifyLeadRequest) (*marketingv1.DisqualifyLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	lead, err := s.leads.Disqualify(ctx, tenant, req.GetId(), req.GetReason(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &marketingv1.DisqualifyLeadResponse{Lead: lead}, nil
}

// GetScoringRules implements marketingv1.MarketingServiceServer.
func (s *Server) GetScoringRules(ctx context.Context, _ *marketingv1.GetScoringRulesRequest) (*marketingv1.GetScoringRulesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := s.scoring.Rules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetScoringRulesResponse{ScoringRules: rules}, nil
}

// UpdateScoringRules implements marketingv1.MarketingServiceServer.
func (s *Server) UpdateScoringRules(ctx context.Context, req *marketingv1.UpdateScoringRulesRequest) (*marketingv1.UpdateScoringRulesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := s.scoring.Update(ctx, tenant, req.GetScoringRules(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &marketingv1.UpdateScoringRulesResponse{ScoringRules: rules}, nil
}
