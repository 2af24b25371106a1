package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Unavailable reports whether err says Redis cannot answer now (unreachable, timing out, loading,
// failing over, full, its pool exhausted), as opposed to a bug or a refusal: what the gRPC edge
// answers 503 STORE_UNAVAILABLE, and what the event consumer retries without counting toward the
// dead-letter limit. It looks through wrapping (an apierr that wraps such a fault is one). ctx is
// the caller's: a timeout of its own deadline is the caller's, not the store's.
func Unavailable(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil) {
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
