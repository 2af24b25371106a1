package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// export streams a list's pages, one message each, after recording the export in the audit log.
func export[T any](ctx context.Context, s *Server, resource, filter string, ev eventv1.Type[*eventv1.Exported],
	parse func(string) (sales.Index, error), list func(context.Context, string, sales.Query) (page.Page[T], error), send func([]T) error) error {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return err
	}
	index, err := parse(filter)
	if err != nil {
		return err
	}
	if err := s.uc.Audit.Record(ctx, tenant, ev.Of(&eventv1.Exported{Resource: resource, Filter: filter, Format: events.ExportFormat(ctx)})); err != nil {
		return err
	}
	return page.Each(ctx, pagesize.Export, func(ctx context.Context, r page.Request) (page.Page[T], error) {
		return list(ctx, tenant, sales.Query{Index: index, Request: r})
	}, send)
}

// ExportAccounts implements salesv1.SalesServiceServer.
func (s *Server) ExportAccounts(req *salesv1.ExportAccountsRequest, stream grpc.ServerStreamingServer[salesv1.ExportAccountsResponse]) error {
	return export(stream.Context(), s, "accounts", req.GetFilter(), salesv1.EventAccountsExported, sales.ParseAccountFilter, s.uc.Accounts.ListAccounts,
		func(items []*sales.Account) error {
			return stream.Send(&salesv1.ExportAccountsResponse{Accounts: items})
		})
}

// ExportContacts implements salesv1.SalesServiceServer.
func (s *Server) ExportContacts(req *salesv1.ExportContactsRequest, stream grpc.ServerStreamingServer[salesv1.ExportContactsResponse]) error {
	return export(stream.Context(), s, "contacts", req.GetFilter(), salesv1.EventContactsExported, sales.ParseContactFilter, s.uc.Accounts.ListContacts,
		func(items []*sales.Contact) error {
			return stream.Send(&salesv1.ExportContactsResponse{Contacts: items})
		})
}

// ExportOrders implements salesv1.SalesServiceServer.
func (s *Server) ExportOrders(req *salesv1.ExportOrdersRequest, stream grpc.ServerStreamingServer[salesv1.ExportOrdersResponse]) error {
	return export(stream.Context(), s, "orders", req.GetFilter(), salesv1.EventOrdersExported, sales.ParseOrderFilter, s.uc.Orders.List,
		func(items []*sales.Order) error { return stream.Send(&salesv1.ExportOrdersResponse{Orders: items}) })
}
