package grpcserver

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redisconn"
)

// retryAfterSeconds is what an UNAVAILABLE answer tells a client to wait: Redis restarts, fails
// over or finishes loading in about that time, and the client's next try is cheap.
const retryAfterSeconds = "1"

var errStoreUnavailable = apierr.New(apierr.Unavailable, "STORE_UNAVAILABLE", "the data store is unavailable right now; retry")

// storeUnavailable reports whether err says Redis cannot answer now (redisconn.Unavailable).
func storeUnavailable(ctx context.Context, err error) bool { return redisconn.Unavailable(ctx, err) }

// setRetryAfter tells the client when to come back (the gateway turns it into the HTTP header).
// It is best effort: a stream that already sent its headers keeps them.
func setRetryAfter(ctx context.Context, seconds string) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(ratelimit.RetryAfterHeader, seconds))
}
