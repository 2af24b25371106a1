package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// GetLoyaltyAccount implements marketingv1.MarketingServiceServer.
func (s *Server) GetLoyaltyAccount(ctx context.Context, req *marketingv1.GetLoyaltyAccountRequest) (*marketingv1.GetLoyaltyAccountResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := ofSurvivor(ctx, s.customers, tenant, req.GetCustomerId(), func(id string) (*marketingv1.LoyaltyAccount, error) {
		return s.loyalty.Account(ctx, tenant, id)
	})
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLoyaltyAccountResponse{Account: acct}, nil
}

// CreditPoints implements marketingv1.MarketingServiceServer.
func (s *Server) CreditPoints(ctx context.Context, req *marketingv1.CreditPointsRequest) (*marketingv1.CreditPointsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	entry, acct, err := s.loyalty.Credit(ctx, tenant, req.GetCustomerId(), req.GetPoints(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &marketingv1.CreditPointsResponse{Entry: entry, Account: acct}, nil
}

// RedeemPoints implements marketingv1.MarketingServiceServer.
func (s *Server) RedeemPoints(ctx context.Context, req *marketingv1.RedeemPointsRequest) (*marketingv1.RedeemPointsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	entry, acct, err := s.loyalty.Redeem(ctx, tenant, req.GetCustomerId(), req.GetPoints(), req.GetReward())
	if err != nil {
		return nil, err
	}
	return &marketingv1.RedeemPointsResponse{Entry: entry, Account: acct}, nil
}

// GetLoyaltyProgram implements marketingv1.MarketingServiceServer.
func (s *Server) GetLoyaltyProgram(ctx context.Context, _ *marketingv1.GetLoyaltyProgramRequest) (*marketingv1.GetLoyaltyProgramResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.loyalty.Program(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return &marketingv1.GetLoyaltyProgramResponse{LoyaltyProgram: p}, nil
}

// UpdateLoyaltyProgram implements marketingv1.MarketingServiceServer.
func (s *Server) UpdateLoyaltyProgram(ctx context.Context, req *marketingv1.UpdateLoyaltyProgramRequest) (*marketingv1.UpdateLoyaltyProgramResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.loyalty.UpdateProgram(ctx, tenant, req.GetLoyaltyProgram(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &marketingv1.UpdateLoyaltyProgramResponse{LoyaltyProgram: p}, nil
}
