package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// CreateReferralCode implements marketingv1.MarketingServiceServer.
func (s *Server) CreateReferralCode(ctx context.Context, req *marketingv1.CreateReferralCodeRequest) (*marketingv1.CreateReferralCodeResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := s.referrals.Create(ctx, tenant, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	return &marketingv1.CreateReferralCodeResponse{ReferralCode: rc}, nil
}
