package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// BatchGetProducts implements productv1.ProductServiceServer.
func (s *Server) BatchGetProducts(ctx context.Context, req *productv1.BatchGetProductsRequest) (*productv1.BatchGetProductsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	products, err := s.catalog.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &productv1.BatchGetProductsResponse{Products: products}, nil
}

// BatchGetSubscriptions implements productv1.ProductServiceServer.
func (s *Server) BatchGetSubscriptions(ctx context.Context, req *productv1.BatchGetSubscriptionsRequest) (*productv1.BatchGetSubscriptionsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	subscriptions, err := s.subscriptions.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &productv1.BatchGetSubscriptionsResponse{Subscriptions: subscriptions}, nil
}
