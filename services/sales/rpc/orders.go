package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// CreateOrder implements salesv1.SalesServiceServer.
func (s *Server) CreateOrder(ctx context.Context, req *salesv1.CreateOrderRequest) (*salesv1.CreateOrderResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Orders.Create(ctx, tenant, req.GetOrder())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreateOrderResponse{Order: o}, nil
}

// GetOrder implements salesv1.SalesServiceServer.
func (s *Server) GetOrder(ctx context.Context, req *salesv1.GetOrderRequest) (*salesv1.GetOrderResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.uc.Orders.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetOrderResponse{Order: o}, nil
}

// ListOrders implements salesv1.SalesServiceServer.
func (s *Server) ListOrders(ctx context.Context, req *salesv1.ListOrdersRequest) (*salesv1.ListOrdersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := sales.ParseOrderFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListOrders", req.GetFilter())
	q, err := query(list, index, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	orders, err := s.uc.Orders.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListOrdersResponse{Orders: orders.Items, NextPageToken: list.Token(orders.Next)}, nil
}

// CreateActivity implements salesv1.SalesServiceServer.
func (s *Server) CreateActivity(ctx context.Context, req *salesv1.CreateActivityRequest) (*salesv1.CreateActivityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Activities.Create(ctx, tenant, req.GetActivity())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreateActivityResponse{Activity: a}, nil
}

// GetActivity implements salesv1.SalesServiceServer.
func (s *Server) GetActivity(ctx context.Context, req *salesv1.GetActivityRequest) (*salesv1.GetActivityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Activities.Get(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetActivityResponse{Activity: a}, nil
}

// ListActivities implements salesv1.SalesServiceServer.
func (s *Server) ListActivities(ctx context.Context, req *salesv1.ListActivitiesRequest) (*salesv1.ListActivitiesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := sales.ParseActivityFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListActivities", req.GetFilter())
	q, err := query(list, index, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	acts, err := s.uc.Activities.List(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListActivitiesResponse{Activities: acts.Items, NextPageToken: list.Token(acts.Next)}, nil
}

// CompleteActivity implements salesv1.SalesServiceServer.
func (s *Server) CompleteActivity(ctx context.Context, req *salesv1.CompleteActivityRequest) (*salesv1.CompleteActivityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Activities.Complete(ctx, tenant, req.GetId(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &salesv1.CompleteActivityResponse{Activity: a}, nil
}

// ListOverdueTasks implements salesv1.SalesServiceServer.
func (s *Server) ListOverdueTasks(ctx context.Context, req *salesv1.ListOverdueTasksRequest) (*salesv1.ListOverdueTasksResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListOverdueTasks", req.GetOwnerId())
	q, err := query(list, sales.Index{}, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	acts, err := s.uc.Activities.Overdue(ctx, tenant, req.GetOwnerId(), q.After, q.Limit)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListOverdueTasksResponse{Activities: acts.Items, NextPageToken: list.Token(acts.Next)}, nil
}
