package grpcserver

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/ratelimit"
)

// retryAfterSeconds is what an UNAVAILABLE answer tells a client to wait: Redis restarts, fails
// over or finishes loading in about that time, and the client's next try is cheap.
const retryAfterSeconds = "1"

var errStoreUnavailable = apierr.New(apierr.Unavailable, "STORE_UNAVAILABLE", "the data store is unavailable right now; retry")

// storeUnavailable reports whether err says Redis cannot answer now (unreachable, timing out,
// loading, failing over, full, its pool exhausted), as opposed to a bug. ctx is the call's: a
// timeout of its own deadline is the caller's, not the store's.
func storeUnavailable(ctx context.Context, err error) bool {
	if errors.Is(err, context.Canceled) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil) {
		return false
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return true
	}
	return redis.IsLoadingError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsMasterDownError(err) || redis.IsReadOnlyError(err) || redis.IsMaxClientsError(err) ||
		redis.IsNoReplicasError(err) || redis.IsOOMError(err) || redis.HasErrorPrefix(err, "BUSY")
}

// setRetryAfter tells the client when to come back (the gateway turns it into the HTTP header).
// It is best effort: a stream that already sent its headers keeps them.
func setRetryAfter(ctx context.Context, seconds string) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(ratelimit.RetryAfterHeader, seconds))
}
