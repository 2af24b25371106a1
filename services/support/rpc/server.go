// Package rpc is support's gRPC adapter: it turns requests into use-case calls and results into
// responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// UseCases are the support use cases the adapter exposes.
type UseCases struct {
	Tickets *support.Tickets
	Config  *support.Config
	Nps     *support.Nps
	Stats   *support.Stats
	Sweep   *support.Sweep
	// Audit records exports in the tenant's event history.
	Audit events.Recorder
}

// Server implements supportv1.SupportServiceServer.
type Server struct {
	supportv1.UnimplementedSupportServiceServer
	uc     UseCases
	tokens *pagetoken.Codec
}

// New returns the adapter over the use cases.
func New(uc UseCases, tokens *pagetoken.Codec) *Server { return &Server{uc: uc, tokens: tokens} }

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { supportv1.RegisterSupportServiceServer(r, s) }

// call runs a use case for the authenticated caller's tenant.
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

// pageRequest is the page a list request asks for.
func pageRequest(l pagetoken.List, token string, size int32) (page.Request, error) {
	after, err := l.Cursor(token)
	return page.Request{Limit: pagesize.Of(size), After: after}, err
}
