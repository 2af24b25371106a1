// Package rpc is sales' gRPC adapter: it turns requests into use-case calls and results into
// responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// UseCases are the sales use cases the adapter exposes.
type UseCases struct {
	Accounts      *sales.Accounts
	Conversions   *sales.Conversions
	Pipelines     *sales.Pipelines
	Opportunities *sales.Opportunities
	Orders        *sales.Orders
	Activities    *sales.Activities
	Forecasts     *sales.Forecasts
	Customers     *sales.Customers
	Values        *sales.Values
	// Audit records exports in the tenant's event history.
	Audit events.Recorder
	// Imports runs imports and serves their operations.
	Imports *importer.Runner
}

// Server implements salesv1.SalesServiceServer.
type Server struct {
	salesv1.UnimplementedSalesServiceServer
	uc     UseCases
	tokens *pagetoken.Codec
}

// New returns the adapter over the use cases.
func New(uc UseCases, tokens *pagetoken.Codec) *Server { return &Server{uc: uc, tokens: tokens} }

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { salesv1.RegisterSalesServiceServer(r, s) }

func (s *Server) list(tenant, method, filter string) pagetoken.List {
	return s.tokens.List(tenant, method, filter)
}

// query builds the page query of a list request.
func query(l pagetoken.List, index sales.Index, token string, size int32) (sales.Query, error) {
	after, err := l.Cursor(token)
	return sales.Query{Index: index, Request: page.Request{After: after, Limit: pagesize.Of(size)}}, err
}
