package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/grpcserver"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// BatchGetAccounts implements salesv1.SalesServiceServer.
func (s *Server) BatchGetAccounts(ctx context.Context, req *salesv1.BatchGetAccountsRequest) (*salesv1.BatchGetAccountsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	found, err := s.uc.Accounts.GetAccounts(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &salesv1.BatchGetAccountsResponse{Accounts: found}, nil
}

// BatchGetContacts implements salesv1.SalesServiceServer.
func (s *Server) BatchGetContacts(ctx context.Context, req *salesv1.BatchGetContactsRequest) (*salesv1.BatchGetContactsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	found, err := s.uc.Accounts.GetContacts(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &salesv1.BatchGetContactsResponse{Contacts: found}, nil
}

// BatchGetOpportunities implements salesv1.SalesServiceServer.
func (s *Server) BatchGetOpportunities(ctx context.Context, req *salesv1.BatchGetOpportunitiesRequest) (*salesv1.BatchGetOpportunitiesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	found, err := s.uc.Opportunities.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &salesv1.BatchGetOpportunitiesResponse{Opportunities: found}, nil
}

// BatchGetOrders implements salesv1.SalesServiceServer.
func (s *Server) BatchGetOrders(ctx context.Context, req *salesv1.BatchGetOrdersRequest) (*salesv1.BatchGetOrdersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	found, err := s.uc.Orders.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &salesv1.BatchGetOrdersResponse{Orders: found}, nil
}

// BatchGetActivities implements salesv1.SalesServiceServer.
func (s *Server) BatchGetActivities(ctx context.Context, req *salesv1.BatchGetActivitiesRequest) (*salesv1.BatchGetActivitiesResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	found, err := s.uc.Activities.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &salesv1.BatchGetActivitiesResponse{Activities: found}, nil
}

// BatchCreateContacts implements salesv1.SalesServiceServer: each item is a CreateContact, run
// side by side, with its own result; items not started when the deadline nears are
// batch.ErrNotAttempted.
func (s *Server) BatchCreateContacts(ctx context.Context, req *salesv1.BatchCreateContactsRequest) (*salesv1.BatchCreateContactsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	start, cancel := batch.StartBy(ctx)
	defer cancel()
	contacts, errs := batch.Each(ctx, start, req.GetRequests(), func(ctx context.Context, r *salesv1.CreateContactRequest) (*salesv1.Contact, error) {
		return s.uc.Accounts.CreateContact(ctx, tenant, r.GetContact())
	})
	statuses, err := grpcserver.ItemStatuses(ctx, errs)
	if err != nil {
		return nil, err
	}
	out := &salesv1.BatchCreateContactsResponse{Results: make([]*salesv1.BatchCreateContactsResult, len(contacts))}
	for i, c := range contacts {
		if statuses[i] != nil {
			c = nil // a refused item carries its error alone
		}
		out.Results[i] = &salesv1.BatchCreateContactsResult{Contact: c, Error: statuses[i]}
	}
	return out, nil
}
