package rpc

import (
	"context"
	"errors"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
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
		a, err := ofSurvivor(ctx, s.usage, tenant, req.GetCustomerId(), func(id string) (*productv1.Adoption, error) {
			return s.usage.Adoption(ctx, tenant, id)
		})
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
		recs, err := ofSurvivor(ctx, s.usage, tenant, req.GetCustomerId(), func(id string) ([]*productv1.Recommendation, error) {
			return s.recs.List(ctx, tenant, id, limit)
		})
		return &productv1.ListRecommendationsResponse{Recommendations: recs}, err
	})
}

// ofSurvivor reads about a customer with read; when product knows nothing of them
// (CUSTOMER_NOT_FOUND) and they were merged, it reads about the survivor instead: the merge
// moved their grants and usage there.
func ofSurvivor[T any](ctx context.Context, usage *product.Usage, tenant, id string, read func(id string) (T, error)) (T, error) {
	v, err := read(id)
	if !errors.Is(err, product.ErrNoCustomer) {
		return v, err
	}
	survivor, serr := usage.Survivor(ctx, tenant, id)
	if serr != nil || survivor == "" {
		return v, err
	}
	return read(survivor)
}
