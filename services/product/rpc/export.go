package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// ExportProducts implements productv1.ProductServiceServer: ListProducts' pages, one message
// each, after recording the export in the audit log.
func (s *Server) ExportProducts(req *productv1.ExportProductsRequest, stream grpc.ServerStreamingServer[productv1.ExportProductsResponse]) error {
	ctx := stream.Context()
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return err
	}
	index, err := product.ParseProductFilter(req.GetFilter())
	if err != nil {
		return err
	}
	exported := &eventv1.Exported{Resource: "products", Filter: req.GetFilter(), Format: events.ExportFormat(ctx)}
	if err := s.audit.Record(ctx, tenant, productv1.EventProductsExported.Of(exported)); err != nil {
		return err
	}
	return page.Each(ctx, pagesize.Export, func(ctx context.Context, r page.Request) (page.Page[*product.Product], error) {
		return s.catalog.List(ctx, tenant, product.ProductQuery{Index: index, Request: r})
	}, func(products []*product.Product) error {
		return stream.Send(&productv1.ExportProductsResponse{Products: products})
	})
}
