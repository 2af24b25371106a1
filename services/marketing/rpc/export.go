package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// ExportLeads implements marketingv1.MarketingServiceServer: ListLeads' pages, one message each,
// after recording the export in the audit log.
func (s *Server) ExportLeads(req *marketingv1.ExportLeadsRequest, stream grpc.ServerStreamingServer[marketingv1.ExportLeadsResponse]) error {
	ctx := stream.Context()
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return err
	}
	q, err := marketing.ParseLeadList(req.GetFilter(), "")
	if err != nil {
		return err
	}
	exported := &eventv1.Exported{Resource: "leads", Filter: req.GetFilter(), Format: events.ExportFormat(ctx)}
	if err := s.audit.Record(ctx, tenant, marketingv1.EventLeadsExported.Of(exported)); err != nil {
		return err
	}
	return page.Each(ctx, pagesize.Export, func(ctx context.Context, r page.Request) (page.Page[*marketing.Lead], error) {
		q.Request = r
		return s.leads.List(ctx, tenant, q)
	}, func(leads []*marketing.Lead) error {
		return stream.Send(&marketingv1.ExportLeadsResponse{Leads: leads})
	})
}
