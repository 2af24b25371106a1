// Package rpc is the product service's gRPC adapter: it turns requests into use-case calls and
// results into responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/pagetoken"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// Server implements productv1.ProductServiceServer.
type Server struct {
	productv1.UnimplementedProductServiceServer
	catalog       *product.Catalog
	subscriptions *product.Subscriptions
	usage         *product.Usage
	recs          *product.Recommendations
	audit         events.Recorder
	tokens        *pagetoken.Codec
	imports       *importer.Runner
	importStore   product.ImportStore
}

// UseCases are the product use cases the adapter exposes.
type UseCases struct {
	Catalog         *product.Catalog
	Subscriptions   *product.Subscriptions
	Usage           *product.Usage
	Recommendations *product.Recommendations
	// Audit records exports in the tenant's event history.
	Audit events.Recorder
	// Imports runs imports and serves their operations; ImportStore is the catalog's batched
	// reads and writes.
	Imports     *importer.Runner
	ImportStore product.ImportStore
}

// New returns the adapter over the use cases.
func New(uc UseCases, tokens *pagetoken.Codec) *Server {
	return &Server{catalog: uc.Catalog, subscriptions: uc.Subscriptions, usage: uc.Usage, recs: uc.Recommendations, audit: uc.Audit, tokens: tokens,
		imports: uc.Imports, importStore: uc.ImportStore}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { productv1.RegisterProductServiceServer(r, s) }

// call runs a use case for the caller's tenant.
func call[T any](ctx context.Context, do func(tenant string) (T, error)) (T, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return do(tenant)
}

func (s *Server) list(tenant, method, filter string) pagetoken.List {
	return s.tokens.List(tenant, method, filter)
}
