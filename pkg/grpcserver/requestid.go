package grpcserver

import (
	"context"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
)

// RequestIDHeader is the metadata key of a call's request id (X-Request-Id at the REST edge).
const RequestIDHeader = "x-request-id"

// requestID is the call's request id: the caller's when it sent a usable one, else a new one. It is
// sent back as header metadata, so a caller that sent none learns it.
func requestID(ctx context.Context) string {
	id := ""
	if v := metadata.ValueFromIncomingContext(ctx, RequestIDHeader); len(v) > 0 && usableRequestID(v[0]) {
		id = v[0]
	} else {
		id = uuid.Must(uuid.NewV7()).String()
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return id
}

// usableRequestID accepts what fits in a log line and a header: 1 to 128 printable ASCII bytes.
func usableRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// withCause records the authenticated key, the request id and the method as the cause of whatever the call
// writes: every event it publishes carries them (events.Envelope).
func withCause(ctx context.Context, p auth.Principal, method string) context.Context {
	return events.WithCause(ctx, events.ByKey(p.KeyID, requestID(ctx), method))
}
