// Package grpcserver is the one gRPC server bootstrap every service runs on: otelgrpc stats
// handler; interceptors for logging, error mapping, panic recovery, authentication, rate limits,
// protovalidate validation and idempotency keys; health (SERVING only while Redis answers); reflection; graceful
// stop.
package grpcserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	grpcprotovalidate "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// MaxConnectionAge is how long a client connection lives before the server asks the client to
// reconnect: the longest a new replica waits for its share of the calls between services.
const MaxConnectionAge = 5 * time.Minute

// MaxConnectionAgeGrace is how long the calls in flight on an aged-out connection may still run.
// Streams are long: an import of a large file or an export of a million rows runs for many
// minutes on a busy store, and cutting it would fail the import (to be resumed) or the export.
const MaxConnectionAgeGrace = 2 * time.Hour

// Config of the gRPC listener.
type Config struct {
	Addr     string
	CertFile string
	KeyFile  string
	// CAFile verifies the services this process calls, and the client certificates presented to it.
	CAFile string
	// ClientCertFile and ClientKeyFile are what this process presents when it calls services.
	ClientCertFile, ClientKeyFile string
	// RequireClientCert makes the gRPC port take only calls with a client certificate of the CA.
	RequireClientCert bool
	ShutdownTimeout   time.Duration
	// HealthInterval is how often Redis is pinged to decide SERVING.
	HealthInterval time.Duration
}

// RegisterFlags registers the gRPC server flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "grpc-addr", ":9090", "gRPC listen address")
	fs.StringVar(&c.CertFile, "tls-cert", "", "TLS certificate for gRPC and REST (PEM); TLS is off without it")
	fs.StringVar(&c.KeyFile, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&c.CAFile, "tls-ca", "", "CA (PEM) that services' certificates, and client certificates, are verified against "+
		"(default: the system roots and this process's own certificate)")
	fs.StringVar(&c.ClientCertFile, "tls-client-cert", "", "certificate (PEM) this process presents when it calls services (mutual TLS)")
	fs.StringVar(&c.ClientKeyFile, "tls-client-key", "", "private key (PEM) of --tls-client-cert")
	fs.BoolVar(&c.RequireClientCert, "tls-require-client-cert", false, "accept gRPC calls only with a client certificate of --tls-ca")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to drain in-flight calls on shutdown")
	fs.DurationVar(&c.HealthInterval, "health-interval", 2*time.Second, "how often Redis is pinged for health")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("grpc: --grpc-addr is required")
	}
	if (c.CertFile == "") != (c.KeyFile == "") || (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		return errors.New("grpc: --tls-cert and --tls-key go together, and so do --tls-client-cert and --tls-client-key")
	}
	if c.CertFile == "" && (c.CAFile != "" || c.ClientCertFile != "" || c.RequireClientCert) {
		return errors.New("grpc: --tls-ca, --tls-client-cert and --tls-require-client-cert need --tls-cert")
	}
	if c.RequireClientCert && c.CAFile == "" {
		return errors.New("grpc: --tls-require-client-cert needs --tls-ca to verify the client certificates")
	}
	if c.ShutdownTimeout <= 0 || c.HealthInterval <= 0 {
		return errors.New("grpc: --shutdown-timeout and --health-interval must be positive")
	}
	return nil
}

// Deps are what the server needs from the process.
type Deps struct {
	Logger        *slog.Logger
	Telemetry     *telemetry.Telemetry
	Authenticator Authenticator
	// Redis is pinged for health, unless Ready is set.
	Redis redis.UniversalClient
	// Ready, when set, is the health check instead of the ping: crm's also says NOT_SERVING while
	// the store is not initialized (keyspace.Space.Check).
	Ready func(context.Context) error
	// RateLimiter, when set, limits calls per API key.
	RateLimiter *ratelimit.Limiter
	// Idempotency, when set, gives mutating calls Idempotency-Key semantics.
	Idempotency *idempotency.Store
}

// Server is a gRPC server with health and reflection; services register on it.
type Server struct {
	cfg      Config
	deps     Deps
	grpc     *grpc.Server
	health   *health.Server
	services []string
}

// streamWorkers is how many calls at once run on reused goroutines (grpc.NumStreamWorkers); a
// worker waits on Redis for most of a call, so it is well above the core count.
const streamWorkers = 128

// New builds the server.
func New(cfg Config, deps Deps) (*Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("grpc: validator: %w", err)
	}
	logger := deps.Logger
	unary := []grpc.UnaryServerInterceptor{
		logCalls(logger),
		errorInterceptor(logger),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(logger))),
		unaryAuth(deps.Authenticator),
	}
	stream := []grpc.StreamServerInterceptor{
		logging.StreamServerInterceptor(slogAdapter(logger), logging.WithLevels(codeToLevel),
			logging.WithLogOnEvents(logging.FinishCall), logging.WithFieldsFromContext(requestIDField)),
		streamErrors(logger),
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(logger))),
		streamAuth(deps.Authenticator, logger),
	}
	if deps.RateLimiter != nil {
		unary = append(unary, deps.RateLimiter.UnaryServerInterceptor())
		stream = append(stream, deps.RateLimiter.StreamServerInterceptor())
	}
	stream = append(stream, grpcprotovalidate.StreamServerInterceptor(validator))
	unary = append(unary, grpcprotovalidate.UnaryServerInterceptor(validator))
	if deps.Idempotency != nil {
		// The idempotency store keeps or releases a key by the status of the outcome, so it must
		// see handler errors already mapped: a second error mapping runs inside it (the outer one
		// passes statuses through unchanged).
		unary = append(unary, deps.Idempotency.UnaryServerInterceptor(auth.ChangesState), errorInterceptor(logger))
	}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(deps.Telemetry.TracerProvider),
			otelgrpc.WithMeterProvider(deps.Telemetry.MeterProvider),
			otelgrpc.WithPropagators(deps.Telemetry.Propagator),
			// Probes check health every few seconds on every replica: no spans for them.
			otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(4 << 20),
		// Calls run on long-lived workers whose stacks have already grown to what the interceptor
		// chain and handlers need, instead of a new goroutine per call that grows its stack
		// (copying it) on every call: that copying was 6 % of crm's CPU under load. A call finding
		// every worker busy still gets a goroutine of its own.
		grpc.NumStreamWorkers(streamWorkers),
		// Connections end after a maximum age (with time for calls in flight), so clients
		// re-resolve and spread over replicas added since; idle clients may ping (grpcclient).
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: MaxConnectionAge, MaxConnectionAgeGrace: MaxConnectionAgeGrace}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
	}
	if cfg.TLS() {
		tlsCfg, err := cfg.ServerTLS()
		if err != nil {
			return nil, fmt.Errorf("grpc: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s := &Server{cfg: cfg, deps: deps, grpc: grpc.NewServer(opts...), health: health.NewServer()}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// RegisterService implements grpc.ServiceRegistrar; each registered service gets a health status.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
	s.services = append(s.services, desc.ServiceName)
	s.health.SetServingStatus(desc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

// Serve serves on lis until ctx is done, then stops in order: health NOT_SERVING, drain in-flight
// calls for up to ShutdownTimeout, then cut the rest.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watchRedis(watchCtx)

	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.health.Shutdown()
	drained := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.deps.Logger.Warn("grpc: drain timed out, closing remaining calls")
		s.grpc.Stop()
	}
	return nil
}

func (s *Server) watchRedis(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.HealthInterval)
	defer ticker.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		pingCtx, cancel := context.WithTimeout(ctx, s.cfg.HealthInterval)
		err := s.ready(pingCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		status := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if status != last {
			if err != nil {
				s.deps.Logger.Warn("health: not serving", "error", err)
			}
			s.health.SetServingStatus("", status)
			for _, name := range s.services {
				s.health.SetServingStatus(name, status)
			}
			last = status
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (s *Server) ready(ctx context.Context) error {
	if s.deps.Ready != nil {
		return s.deps.Ready(ctx)
	}
	return s.deps.Redis.Ping(ctx).Err()
}

func panicHandler(logger *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p))
		return apierr.New(apierr.Internal, "INTERNAL", "internal error")
	}
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// codeToLevel keeps successful calls out of the default (info) log: at full load, a log line per
// call costs more than the call.
func codeToLevel(code codes.Code) logging.Level {
	switch code {
	case codes.OK, codes.Canceled:
		return logging.LevelDebug
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return logging.LevelError
	case codes.Unavailable, codes.DeadlineExceeded:
		return logging.LevelWarn
	}
	return logging.LevelInfo
}

// requestIDField logs the request id the gateway forwards (x-request-id), so one request's lines
// are found by the id its client saw in X-Request-Id.
func requestIDField(ctx context.Context) logging.Fields {
	if ids := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(ids) == 1 {
		return logging.Fields{"request_id", ids[0]}
	}
	return nil
}
