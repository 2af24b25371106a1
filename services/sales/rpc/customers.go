package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// GetCustomer implements salesv1.SalesServiceServer.
func (s *Server) GetCustomer(ctx context.Context, req *salesv1.GetCustomerRequest) (*salesv1.GetCustomerResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.uc.Customers.Get(ctx, tenant, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetCustomerResponse{Customer: c}, nil
}

// GetCustomerValue implements salesv1.SalesServiceServer.
func (s *Server) GetCustomerValue(ctx context.Context, req *salesv1.GetCustomerValueRequest) (*salesv1.GetCustomerValueResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.uc.Values.Get(ctx, tenant, req.GetCustomerId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetCustomerValueResponse{Value: v}, nil
}
