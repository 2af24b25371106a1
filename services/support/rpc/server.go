// Package rpc is support's gRPC adapter: it turns requests into use-case calls and results into
// responses. The tenant always comes from the authenticated caller.
package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
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

// listCall is one list request's page tokens: a token continues exactly the list it came from
// (same tenant, method and filter or parent).
type listCall struct {
	tokens  *pagetoken.Codec
	binding string
}

func (s *Server) list(tenant, method, filter string) listCall {
	return listCall{tokens: s.tokens, binding: tenant + "\x00" + method + "\x00" + filter}
}

func (l listCall) page(token string, size int32) (support.Page, error) {
	p := support.Page{Limit: pagesize.Of(size)}
	if token == "" {
		return p, nil
	}
	var err error
	p.After, err = l.tokens.Decode(l.binding, token)
	return p, err
}

func (l listCall) token(next string) string {
	if next == "" {
		return ""
	}
	return l.tokens.Encode(l.binding, next)
}
