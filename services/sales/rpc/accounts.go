package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// CreateAccount implements salesv1.SalesServiceServer.
func (s *Server) CreateAccount(ctx context.Context, req *salesv1.CreateAccountRequest) (*salesv1.CreateAccountResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Accounts.CreateAccount(ctx, tenant, req.GetAccount())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreateAccountResponse{Account: a}, nil
}

// GetAccount implements salesv1.SalesServiceServer.
func (s *Server) GetAccount(ctx context.Context, req *salesv1.GetAccountRequest) (*salesv1.GetAccountResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Accounts.GetAccount(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetAccountResponse{Account: a}, nil
}

// ListAccounts implements salesv1.SalesServiceServer.
func (s *Server) ListAccounts(ctx context.Context, req *salesv1.ListAccountsRequest) (*salesv1.ListAccountsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := sales.ParseAccountFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListAccounts", req.GetFilter())
	q, err := query(list, index, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	accounts, err := s.uc.Accounts.ListAccounts(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListAccountsResponse{Accounts: accounts.Items, NextPageToken: list.Token(accounts.Next)}, nil
}

// UpdateAccount implements salesv1.SalesServiceServer.
func (s *Server) UpdateAccount(ctx context.Context, req *salesv1.UpdateAccountRequest) (*salesv1.UpdateAccountResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.uc.Accounts.UpdateAccount(ctx, tenant, req.GetAccount(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &salesv1.UpdateAccountResponse{Account: a}, nil
}

// DeleteAccount implements salesv1.SalesServiceServer.
func (s *Server) DeleteAccount(ctx context.Context, req *salesv1.DeleteAccountRequest) (*salesv1.DeleteAccountResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.uc.Accounts.DeleteAccount(ctx, tenant, req.GetId(), req.GetEtag()); err != nil {
		return nil, err
	}
	return &salesv1.DeleteAccountResponse{}, nil
}

// CreateContact implements salesv1.SalesServiceServer.
func (s *Server) CreateContact(ctx context.Context, req *salesv1.CreateContactRequest) (*salesv1.CreateContactResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.uc.Accounts.CreateContact(ctx, tenant, req.GetContact())
	if err != nil {
		return nil, err
	}
	return &salesv1.CreateContactResponse{Contact: c}, nil
}

// GetContact implements salesv1.SalesServiceServer.
func (s *Server) GetContact(ctx context.Context, req *salesv1.GetContactRequest) (*salesv1.GetContactResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.uc.Accounts.GetContact(ctx, tenant, req.GetId())
	if err != nil {
		return nil, err
	}
	return &salesv1.GetContactResponse{Contact: c}, nil
}

// ListContacts implements salesv1.SalesServiceServer.
func (s *Server) ListContacts(ctx context.Context, req *salesv1.ListContactsRequest) (*salesv1.ListContactsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	index, err := sales.ParseContactFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	list := s.list(tenant, "ListContacts", req.GetFilter())
	q, err := query(list, index, req.GetPageToken(), req.GetPageSize())
	if err != nil {
		return nil, err
	}
	contacts, err := s.uc.Accounts.ListContacts(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	return &salesv1.ListContactsResponse{Contacts: contacts.Items, NextPageToken: list.Token(contacts.Next)}, nil
}

// UpdateContact implements salesv1.SalesServiceServer.
func (s *Server) UpdateContact(ctx context.Context, req *salesv1.UpdateContactRequest) (*salesv1.UpdateContactResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.uc.Accounts.UpdateContact(ctx, tenant, req.GetContact(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &salesv1.UpdateContactResponse{Contact: c}, nil
}

// DeleteContact implements salesv1.SalesServiceServer.
func (s *Server) DeleteContact(ctx context.Context, req *salesv1.DeleteContactRequest) (*salesv1.DeleteContactResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.uc.Accounts.DeleteContact(ctx, tenant, req.GetId(), req.GetEtag()); err != nil {
		return nil, err
	}
	return &salesv1.DeleteContactResponse{}, nil
}

// ConvertLead implements salesv1.SalesServiceServer.
func (s *Server) ConvertLead(ctx context.Context, req *salesv1.ConvertLeadRequest) (*salesv1.ConvertLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	a, c, o, err := s.uc.Conversions.Convert(ctx, tenant, sales.ConvertRequest{
		LeadID: req.GetLeadId(), AccountID: req.GetAccountId(), OwnerID: req.GetOwnerId(), Opportunity: req.GetOpportunity(),
	})
	if err != nil {
		return nil, err
	}
	return &salesv1.ConvertLeadResponse{Account: a, Contact: c, Opportunity: o}, nil
}
