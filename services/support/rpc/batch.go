package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// BatchGetTickets implements supportv1.SupportServiceServer.
func (s *Server) BatchGetTickets(ctx context.Context, req *supportv1.BatchGetTicketsRequest) (*supportv1.BatchGetTicketsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	tickets, err := s.uc.Tickets.GetMany(ctx, tenant, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &supportv1.BatchGetTicketsResponse{Tickets: tickets}, nil
}
