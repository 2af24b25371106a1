package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// ExportTickets implements supportv1.SupportServiceServer: ListTickets' pages, one message each,
// after recording the export in the audit log.
func (s *Server) ExportTickets(req *supportv1.ExportTicketsRequest, stream grpc.ServerStreamingServer[supportv1.ExportTicketsResponse]) error {
	ctx := stream.Context()
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return err
	}
	index, err := support.ParseTicketFilter(req.GetFilter())
	if err != nil {
		return err
	}
	exported := &eventv1.Exported{Resource: "tickets", Filter: req.GetFilter(), Format: events.ExportFormat(ctx)}
	if err := s.uc.Audit.Record(ctx, tenant, supportv1.EventTicketsExported.Of(exported)); err != nil {
		return err
	}
	return page.Each(ctx, pagesize.Export, func(ctx context.Context, r page.Request) (page.Page[*support.Ticket], error) {
		return s.uc.Tickets.List(ctx, tenant, index, r)
	}, func(tickets []*support.Ticket) error {
		return stream.Send(&supportv1.ExportTicketsResponse{Tickets: tickets})
	})
}
