package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
)

// Authenticator resolves an API key to its principal.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (auth.Principal, error)
}

var errAuthUnavailable = apierr.New(apierr.Unavailable, "AUTH_UNAVAILABLE", "cannot check the API key right now; retry")

func authenticate(ctx context.Context, a Authenticator, fullMethod string) (context.Context, error) {
	scope, public := auth.RequiredScope(fullMethod)
	if public {
		return ctx, nil
	}
	secret, ok := bearer(ctx)
	if !ok {
		return nil, auth.ErrUnauthenticated
	}
	p, err := a.Authenticate(ctx, secret)
	if errors.Is(err, auth.ErrUnauthenticated) {
		return nil, auth.ErrUnauthenticated
	}
	if err != nil {
		return nil, errAuthUnavailable.Wrap(err)
	}
	if !p.Allows(scope) {
		return nil, auth.ErrMissingScope.With("scope", scope)
	}
	return withCause(auth.WithPrincipal(ctx, p), p, fullMethod), nil
}

func bearer(ctx context.Context) (string, bool) {
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		scheme, secret, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "bearer") && secret != "" {
			return strings.TrimSpace(secret), true
		}
	}
	return "", false
}

func unaryAuth(a Authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authenticate(ctx, a, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authedStream) Context() context.Context { return s.ctx }

func streamAuth(a Authenticator, logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authenticate(ss.Context(), a, info.FullMethod)
		if err != nil {
			return toStatus(ss.Context(), logger, info.FullMethod, err)
		}
		return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
	}
}
