package rpc

import (
	"context"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// defaultRecommendations is how many recommendations a call returns unless it asks otherwise.
const defaultRecommendations = 10

// RecordUsage implements productv1.ProductServiceServer.
func (s *Server) RecordUsage(ctx context.Context, req *productv1.RecordUsageRequest) (*productv1.RecordUsageResponse, error) {
	return call(ctx, func(tenant string) (*productv1.RecordUsageResponse, error) {
		rec, err := s.usage.Record(ctx, tenant, req.GetSubscriptionId(), req.GetUsageRecord())
		return &productv1.RecordUsageResponse{UsageRecord: rec}, err
	})
}

// GetCustomerAdoption implements productv1.ProductServiceServer.
func (s *Server) GetCustomerAdoption(ctx context.Context, req *productv1.GetCustomerAdoptionRequest) (*productv1.GetCustomerAdoptionResponse, error) {
	return call(ctx, func(tenant string) (*productv1.GetCustomerAdoptionResponse, error) {
		a, err := s.usage.Adoption(ctx, tenant, req.GetCustomerId())
		return &productv1.GetCustomerAdoptionResponse{Adoption: a}, err
	})
}

// ListRecommendations implements productv1.ProductServiceServer.
func (s *Server) ListRecommendations(ctx context.Context, req *productv1.ListRecommendationsRequest) (*productv1.ListRecommendationsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.ListRecommendationsResponse, error) {
		limit := int(req.GetPageSize())
		if limit == 0 {
			limit = defaultRecommendations
		}
		recs, err := s.recs.List(ctx, tenant, req.GetCustomerId(), limit)
		return &productv1.ListRecommendationsResponse{Recommendations: recs}, err
	})
}
