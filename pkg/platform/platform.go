// Package platform is what a process hands each service it mounts: the shared Redis client, key
// space, telemetry, logger, outbound connections and clock. Services take it in their constructor
// and expose Register, so `crm serve --target=` can mount any subset in one process.
package platform

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// Deps are the process's shared parts.
type Deps struct {
	Redis      redis.UniversalClient
	Keys       *keyspace.Space
	PageTokens *pagetoken.Codec
	Telemetry  *telemetry.Telemetry
	Logger     *slog.Logger
	Now        func() time.Time
	// Dial returns the shared connection to another service (for example "product"), in this
	// process or remote: traced, with a deadline on every call and the caller's credential
	// forwarded. It fails when the process knows no address for the service.
	Dial func(service string) (*grpc.ClientConn, error)
	// ImportBatchesInFlight is how many batches one file import writes at once (0: the
	// importer's default).
	ImportBatchesInFlight int
	// ImportMaxBytes bounds the file one import streams (0: no bound), as the gateway's
	// --max-import-bytes bounds a REST body: a gRPC client's stream is held to it too.
	ImportMaxBytes int64
}

// Background is a service with work of its own beside its RPCs, such as a sweep on a timer. The
// process runs it until shutdown, and stops it together with the event consumers.
type Background interface {
	RunBackground(ctx context.Context) error
}

// Reactor is a service that reacts to other services' events.
type Reactor interface {
	// Subscriptions are the event streams the service consumes, one consumer group each.
	Subscriptions() []events.Subscription
}

// Service is a mountable service.
type Service interface {
	// Name is the service's target name, for example "marketing".
	Name() string
	// Register adds the service's gRPC servers.
	Register(grpc.ServiceRegistrar)
}
