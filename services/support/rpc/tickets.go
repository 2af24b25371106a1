package rpc

import (
	"context"

	"github.com/crmcycle/crm/pkg/auth"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// CreateTicket implements supportv1.SupportServiceServer.
func (s *Server) CreateTicket(ctx context.Context, req *supportv1.CreateTicketRequest) (*supportv1.CreateTicketResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.CreateTicketResponse, error) {
		t, err := s.uc.Tickets.Create(ctx, tenant, req.GetTicket())
		return &supportv1.CreateTicketResponse{Ticket: t}, err
	})
}

// GetTicket implements supportv1.SupportServiceServer.
func (s *Server) GetTicket(ctx context.Context, req *supportv1.GetTicketRequest) (*supportv1.GetTicketResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.GetTicketResponse, error) {
		t, err := s.uc.Tickets.Get(ctx, tenant, req.GetId())
		return &supportv1.GetTicketResponse{Ticket: t}, err
	})
}

// ListTickets implements supportv1.SupportServiceServer.
func (s *Server) ListTickets(ctx context.Context, req *supportv1.ListTicketsRequest) (*supportv1.ListTicketsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.ListTicketsResponse, error) {
		ix, err := support.ParseTicketFilter(req.GetFilter())
		if err != nil {
			return nil, err
		}
		list := s.list(tenant, "ListTickets", req.GetFilter())
		p, err := pageRequest(list, req.GetPageToken(), req.GetPageSize())
		if err != nil {
			return nil, err
		}
		tickets, err := s.uc.Tickets.List(ctx, tenant, ix, p)
		return &supportv1.ListTicketsResponse{Tickets: tickets.Items, NextPageToken: list.Token(tickets.Next)}, err
	})
}

// UpdateTicket implements supportv1.SupportServiceServer.
func (s *Server) UpdateTicket(ctx context.Context, req *supportv1.UpdateTicketRequest) (*supportv1.UpdateTicketResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.UpdateTicketResponse, error) {
		t, err := s.uc.Tickets.Update(ctx, tenant, req.GetTicket(), req.GetUpdateMask())
		return &supportv1.UpdateTicketResponse{Ticket: t}, err
	})
}

// AssignTicket implements supportv1.SupportServiceServer.
func (s *Server) AssignTicket(ctx context.Context, req *supportv1.AssignTicketRequest) (*supportv1.AssignTicketResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.AssignTicketResponse, error) {
		t, err := s.uc.Tickets.Assign(ctx, tenant, req.GetId(), req.GetAssigneeId(), req.GetEtag())
		return &supportv1.AssignTicketResponse{Ticket: t}, err
	})
}

// move makes move m on ticket id if ifMatch (when set) is still its etag.
func (s *Server) move(ctx context.Context, id string, m support.Move, ifMatch string) (*support.Ticket, error) {
	return call(ctx, func(tenant string) (*support.Ticket, error) { return s.uc.Tickets.Move(ctx, tenant, id, m, ifMatch) })
}

// OpenTicket implements supportv1.SupportServiceServer.
func (s *Server) OpenTicket(ctx context.Context, req *supportv1.OpenTicketRequest) (*supportv1.OpenTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MoveOpen, req.GetEtag())
	return &supportv1.OpenTicketResponse{Ticket: t}, err
}

// PendTicket implements supportv1.SupportServiceServer.
func (s *Server) PendTicket(ctx context.Context, req *supportv1.PendTicketRequest) (*supportv1.PendTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MovePend, req.GetEtag())
	return &supportv1.PendTicketResponse{Ticket: t}, err
}

// HoldTicket implements supportv1.SupportServiceServer.
func (s *Server) HoldTicket(ctx context.Context, req *supportv1.HoldTicketRequest) (*supportv1.HoldTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MoveHold, req.GetEtag())
	return &supportv1.HoldTicketResponse{Ticket: t}, err
}

// SolveTicket implements supportv1.SupportServiceServer.
func (s *Server) SolveTicket(ctx context.Context, req *supportv1.SolveTicketRequest) (*supportv1.SolveTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MoveSolve, req.GetEtag())
	return &supportv1.SolveTicketResponse{Ticket: t}, err
}

// ReopenTicket implements supportv1.SupportServiceServer.
func (s *Server) ReopenTicket(ctx context.Context, req *supportv1.ReopenTicketRequest) (*supportv1.ReopenTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MoveReopen, req.GetEtag())
	return &supportv1.ReopenTicketResponse{Ticket: t}, err
}

// CloseTicket implements supportv1.SupportServiceServer.
func (s *Server) CloseTicket(ctx context.Context, req *supportv1.CloseTicketRequest) (*supportv1.CloseTicketResponse, error) {
	t, err := s.move(ctx, req.GetId(), support.MoveClose, req.GetEtag())
	return &supportv1.CloseTicketResponse{Ticket: t}, err
}

// RateTicket implements supportv1.SupportServiceServer.
func (s *Server) RateTicket(ctx context.Context, req *supportv1.RateTicketRequest) (*supportv1.RateTicketResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.RateTicketResponse, error) {
		t, err := s.uc.Tickets.Rate(ctx, tenant, req.GetId(), req.GetScore(), req.GetComment(), req.GetEtag())
		return &supportv1.RateTicketResponse{Ticket: t}, err
	})
}

// AddComment implements supportv1.SupportServiceServer. A comment that names no author is the
// caller's (its API key id).
func (s *Server) AddComment(ctx context.Context, req *supportv1.AddCommentRequest) (*supportv1.AddCommentResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.AddCommentResponse, error) {
		p, _ := auth.FromContext(ctx)
		c, err := s.uc.Tickets.AddComment(ctx, tenant, req.GetTicketId(), req.GetComment(), p.KeyID)
		return &supportv1.AddCommentResponse{Comment: c}, err
	})
}

// ListComments implements supportv1.SupportServiceServer.
func (s *Server) ListComments(ctx context.Context, req *supportv1.ListCommentsRequest) (*supportv1.ListCommentsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.ListCommentsResponse, error) {
		list := s.list(tenant, "ListComments", req.GetTicketId())
		p, err := pageRequest(list, req.GetPageToken(), req.GetPageSize())
		if err != nil {
			return nil, err
		}
		comments, err := s.uc.Tickets.ListComments(ctx, tenant, req.GetTicketId(), p)
		return &supportv1.ListCommentsResponse{Comments: comments.Items, NextPageToken: list.Token(comments.Next)}, err
	})
}

// SweepTickets implements supportv1.SupportServiceServer.
func (s *Server) SweepTickets(ctx context.Context, _ *supportv1.SweepTicketsRequest) (*supportv1.SweepTicketsResponse, error) {
	return call(ctx, func(tenant string) (*supportv1.SweepTicketsResponse, error) {
		r, err := s.uc.Sweep.Tenant(ctx, tenant)
		return &supportv1.SweepTicketsResponse{Breaches: int32(r.Breaches), Closed: int32(r.Closed)}, err
	})
}
