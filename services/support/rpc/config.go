package rpc

import (
	"context"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// ListSlaPolicies implements supportv1.SupportServiceServer.
func (s *Server) ListSlaPolicies(ctx context.Context, _ *supportv1.ListSlaPoliciesRequest) (*supportv1.ListSlaPoliciesResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.ListSlaPoliciesResponse, error) {
		p, err := s.uc.Config.Policies(ctx, tenant)
		return &supportv1.ListSlaPoliciesResponse{SlaPolicies: p}, err
	})
}

// UpdateSlaPolicy implements supportv1.SupportServiceServer.
func (s *Server) UpdateSlaPolicy(ctx context.Context, req *supportv1.UpdateSlaPolicyRequest) (*supportv1.UpdateSlaPolicyResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.UpdateSlaPolicyResponse, error) {
		p, err := s.uc.Config.UpdatePolicy(ctx, tenant, req.GetSlaPolicy(), req.GetUpdateMask())
		return &supportv1.UpdateSlaPolicyResponse{SlaPolicy: p}, err
	})
}

// GetSupportSettings implements supportv1.SupportServiceServer.
func (s *Server) GetSupportSettings(ctx context.Context, _ *supportv1.GetSupportSettingsRequest) (*supportv1.GetSupportSettingsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.GetSupportSettingsResponse, error) {
		st, err := s.uc.Config.Settings(ctx, tenant)
		return &supportv1.GetSupportSettingsResponse{Settings: st}, err
	})
}

// UpdateSupportSettings implements supportv1.SupportServiceServer.
func (s *Server) UpdateSupportSettings(ctx context.Context, req *supportv1.UpdateSupportSettingsRequest) (*supportv1.UpdateSupportSettingsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.UpdateSupportSettingsResponse, error) {
		st, err := s.uc.Config.UpdateSettings(ctx, tenant, req.GetSettings(), req.GetUpdateMask())
		return &supportv1.UpdateSupportSettingsResponse{Settings: st}, err
	})
}

// RecordNpsResponse implements supportv1.SupportServiceServer.
func (s *Server) RecordNpsResponse(ctx context.Context, req *supportv1.RecordNpsResponseRequest) (*supportv1.RecordNpsResponseResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.RecordNpsResponseResponse, error) {
		r, err := s.uc.Nps.Record(ctx, tenant, req.GetNpsResponse())
		return &supportv1.RecordNpsResponseResponse{NpsResponse: r}, err
	})
}

// GetSupportStats implements supportv1.SupportServiceServer.
func (s *Server) GetSupportStats(ctx context.Context, _ *supportv1.GetSupportStatsRequest) (*supportv1.GetSupportStatsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.GetSupportStatsResponse, error) {
		st, err := s.uc.Stats.Get(ctx, tenant)
		return &supportv1.GetSupportStatsResponse{Stats: st}, err
	})
}

// ListNpsResponses implements supportv1.SupportServiceServer.
func (s *Server) ListNpsResponses(ctx context.Context, req *supportv1.ListNpsResponsesRequest) (*supportv1.ListNpsResponsesResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.ListNpsResponsesResponse, error) {
		customer, err := support.ParseNpsFilter(req.GetFilter())
		if err != nil {
			return nil, err
		}
		list := s.list(tenant, "ListNpsResponses", req.GetFilter())
		p, err := pageRequest(list, req.GetPageToken(), req.GetPageSize())
		if err != nil {
			return nil, err
		}
		answers, err := s.uc.Nps.List(ctx, tenant, customer, p)
		return &supportv1.ListNpsResponsesResponse{NpsResponses: answers.Items, NextPageToken: list.Token(answers.Next)}, err
	})
}
