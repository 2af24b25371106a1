package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// CheckEntitlement implements productv1.ProductServiceServer.
func (s *Server) CheckEntitlement(ctx context.Context, req *productv1.CheckEntitlementRequest) (*productv1.CheckEntitlementResponse, error) {
	return call(ctx, func(tenant string) (*productv1.CheckEntitlementResponse, error) {
		return s.subscriptions.CheckEntitlement(ctx, tenant, req.GetCustomerId(), req.GetProductId())
	})
}

// ListEntitlements implements productv1.ProductServiceServer.
func (s *Server) ListEntitlements(ctx context.Context, req *productv1.ListEntitlementsRequest) (*productv1.ListEntitlementsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.ListEntitlementsResponse, error) {
		list := s.list(tenant, "ListEntitlements", req.GetCustomerId())
		r := page.Request{Limit: pagesize.Of(req.GetPageSize())}
		var err error
		if r.After, err = list.Cursor(req.GetPageToken()); err != nil {
			return nil, err
		}
		ents, err := s.subscriptions.Entitlements(ctx, tenant, req.GetCustomerId(), r)
		return &productv1.ListEntitlementsResponse{Entitlements: ents.Items, NextPageToken: list.Token(ents.Next)}, err
	})
}

// GetSubscription implements productv1.ProductServiceServer.
func (s *Server) GetSubscription(ctx context.Context, req *productv1.GetSubscriptionRequest) (*productv1.GetSubscriptionResponse, error) {
	return call(ctx, func(tenant string) (*productv1.GetSubscriptionResponse, error) {
		sub, err := s.subscriptions.Get(ctx, tenant, req.GetId())
		return &productv1.GetSubscriptionResponse{Subscription: sub}, err
	})
}

// ListSubscriptions implements productv1.ProductServiceServer.
func (s *Server) ListSubscriptions(ctx context.Context, req *productv1.ListSubscriptionsRequest) (*productv1.ListSubscriptionsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.ListSubscriptionsResponse, error) {
		index, err := product.ParseSubscriptionFilter(req.GetFilter())
		if err != nil {
			return nil, err
		}
		list := s.list(tenant, "ListSubscriptions", req.GetFilter())
		q := product.SubscriptionQuery{Index: index, Request: page.Request{Limit: pagesize.Of(req.GetPageSize())}}
		if q.After, err = list.Cursor(req.GetPageToken()); err != nil {
			return nil, err
		}
		subs, err := s.subscriptions.List(ctx, tenant, q)
		return &productv1.ListSubscriptionsResponse{Subscriptions: subs.Items, NextPageToken: list.Token(subs.Next)}, err
	})
}

// CancelSubscription implements productv1.ProductServiceServer.
func (s *Server) CancelSubscription(ctx context.Context, req *productv1.CancelSubscriptionRequest) (*productv1.CancelSubscriptionResponse, error) {
	return call(ctx, func(tenant string) (*productv1.CancelSubscriptionResponse, error) {
		sub, err := s.subscriptions.Cancel(ctx, tenant, req.GetId(), req.GetAtPeriodEnd(), req.GetEtag())
		return &productv1.CancelSubscriptionResponse{Subscription: sub}, err
	})
}

// RenewSubscription implements productv1.ProductServiceServer.
func (s *Server) RenewSubscription(ctx context.Context, req *productv1.RenewSubscriptionRequest) (*productv1.RenewSubscriptionResponse, error) {
	return call(ctx, func(tenant string) (*productv1.RenewSubscriptionResponse, error) {
		sub, err := s.subscriptions.Renew(ctx, tenant, req.GetId(), req.GetEtag())
		return &productv1.RenewSubscriptionResponse{Subscription: sub}, err
	})
}

// SweepRenewals implements productv1.ProductServiceServer.
func (s *Server) SweepRenewals(ctx context.Context, _ *productv1.SweepRenewalsRequest) (*productv1.SweepRenewalsResponse, error) {
	return call(ctx, func(tenant string) (*productv1.SweepRenewalsResponse, error) {
		renewed, expired, err := s.subscriptions.Sweep(ctx, tenant)
		return &productv1.SweepRenewalsResponse{Renewed: int32(renewed), Expired: int32(expired)}, err
	})
}
