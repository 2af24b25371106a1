// Package servicetest runs services under test the way a process runs them: a real redis-server
// (from redistest), the process's platform.Deps, the real grpcserver interceptor chain (auth, rate
// limit, validation, idempotency, error mapping) on a loopback listener, the event consumers of the
// services that react to events, and a generated client's connection to it. Spans go to the
// OpenTelemetry SDK's recorder.
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
//	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{
//		func(d platform.Deps) (platform.Service, error) { return server.New(d) },
//	}})
//	tenant, key := suite.NewKey(t, "", "sales.read", "sales.write")
//	client := salesv1.NewSalesServiceClient(suite.Conn)
//	_, err := client.GetAccount(servicetest.WithKey(ctx, key), req)
//
// A service's tests that need another service register a small fake of it (built from the
// generated server interface) with Options.Fakes: every Deps.Dial answers with this server, so
// the fake serves the calls. The REST half is gateway/gatewaytest.
package servicetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/grpcclient"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Partitions is the partition count of the test key space.
const Partitions = 16

// Builder builds one service from the process's shared parts, for example
// func(d platform.Deps) (platform.Service, error) { return server.New(d) }.
type Builder func(platform.Deps) (platform.Service, error)

// Options say what runs; zero values give one server with no rate limit and no background work.
type Options struct {
	// Services are the services under test.
	Services []Builder
	// Fakes register stand-ins for other services on the same server.
	Fakes []func(grpc.ServiceRegistrar)
	// Redis is the store; default a client of redistest's server, traced into Spans as a
	// process's client is (redistest.ClusterClient for the cluster).
	Redis redis.UniversalClient
	// BusRedis serves the consumers' blocking stream reads, which hold a connection each; default
	// a client of redistest's server with a pool large enough for them (as a process has), or
	// Redis when Redis is given.
	BusRedis redis.UniversalClient
	// RateLimit, when set, turns the per-key rate limiter on.
	RateLimit *ratelimit.Config
	// Now is the services' clock; default time.Now.
	Now func() time.Time
	// Consumer tunes the event consumers of services that react to events (default: 200ms
	// reads, reclaim after 1s, 3 deliveries).
	Consumer events.ConsumerConfig
	// Background runs the services' own background work (sweeps on timers).
	Background bool
	// ClientTimeout bounds calls between services (default 5s).
	ClientTimeout time.Duration
	// AuthCacheTTL is how long an API key's lookup is cached (default 1s): a test that counts a
	// call's round trips to Redis sets it longer than the test, so no lookup falls in its count.
	AuthCacheTTL time.Duration
	// Unreachable names services whose Dial gives a connection to an address nobody listens on.
	Unreachable []string
	// DropSpans makes spans as a process does but keeps none (Suite.Spans stays empty): for a
	// long benchmark, where the recorder, which keeps every finished span, would grow with the run
	// (a process sends its spans to an exporter through a bounded queue instead).
	DropSpans bool
	// OwnRedis runs the suite on a redis-server of its own instead of the package's (when Redis
	// is not given): for a large data set, which on the shared server would slow every other test
	// of the package (their SCANs and stream reads walk it too).
	OwnRedis bool
	// ImportMaxBytes bounds an import's file (platform.Deps.ImportMaxBytes; 0: no bound).
	ImportMaxBytes int64
	// MeterProvider takes the suite's metrics (and the gateway's, with gatewaytest), for a test
	// that reads them with the SDK's manual reader; default none.
	MeterProvider metric.MeterProvider
}

// OwnRedis is the option of a suite with a redis-server of its own (Options.OwnRedis).
func OwnRedis(o *Options) { o.OwnRedis = true }

// Suite is the running server and what a test needs to drive and inspect it.
type Suite struct {
	// Conn is a plain client connection to the server; add credentials with WithKey.
	Conn *grpc.ClientConn
	// Addr is the server's loopback address.
	Addr string
	// Deps are the shared parts the services were built from.
	Deps platform.Deps
	// Redis is the store the services write to.
	Redis redis.UniversalClient
	// Spans records every finished span of the suite.
	Spans     *tracetest.SpanRecorder
	Telemetry *telemetry.Telemetry
	// Services are the built services, in the order of Options.Services.
	Services []platform.Service
}

// Start runs the suite until the test ends.
func Start(t testing.TB, opts Options) *Suite {
	t.Helper()
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	if opts.DropSpans {
		provider = sdktrace.NewTracerProvider() // sampled and ended, sent nowhere
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	tel := telemetry.ForTest(provider, mp)
	rdb, busRedis := opts.Redis, opts.BusRedis
	if rdb == nil {
		url := redistest.URL()
		if opts.OwnRedis {
			url = redistest.NewServer(t).URL
		}
		rdb = tracedClient(t, tel, url)
		if busRedis == nil {
			busRedis = busClient(t, url)
		}
	}
	if busRedis == nil {
		busRedis = rdb
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Consumer == (events.ConsumerConfig{}) {
		// Short reads so the suite stops fast, quick reclaims so redelivery tests finish.
		opts.Consumer = events.ConsumerConfig{Block: 200 * time.Millisecond, ClaimIdle: time.Second, MaxDeliveries: 3}
	}
	if opts.ClientTimeout == 0 {
		opts.ClientTimeout = 5 * time.Second
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := keyspace.Open(ctx, rdb, Partitions)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := pagetoken.Load(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if opts.AuthCacheTTL == 0 {
		opts.AuthCacheTTL = time.Second
	}
	authn := auth.NewAuthenticator(auth.NewStore(rdb), opts.AuthCacheTTL)
	serverDeps := grpcserver.Deps{
		Logger: logger, Telemetry: tel, Redis: rdb,
		Authenticator: authn,
		Idempotency:   idempotency.New(rdb, keys, idempotency.Config{}, tel.MeterProvider),
	}
	pass, err := ratelimit.LoadPass(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if opts.RateLimit != nil {
		serverDeps.RateLimiter = ratelimit.New(rdb, *opts.RateLimit, pass, tel.MeterProvider, logger)
	}
	srv, err := grpcserver.New(grpcserver.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Second}, serverDeps)
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	clients := grpcclient.NewPool(grpcclient.Config{Timeout: opts.ClientTimeout}, tel)
	clients.Admit(pass)
	deps := platform.Deps{
		Redis: rdb, Keys: keys, PageTokens: tokens, Telemetry: tel, Logger: logger, Now: now, ImportMaxBytes: opts.ImportMaxBytes,
		Dial: func(service string) (*grpc.ClientConn, error) {
			for _, u := range opts.Unreachable {
				if u == service {
					return clients.Conn("127.0.0.1:1")
				}
			}
			return clients.Conn(addr)
		},
	}
	s := &Suite{Addr: addr, Deps: deps, Redis: rdb, Spans: spans, Telemetry: tel}
	var subscriptions []events.Subscription
	var background []platform.Background
	for _, build := range opts.Services {
		svc, err := build(deps)
		if err != nil {
			t.Fatal(err)
		}
		svc.Register(srv)
		s.Services = append(s.Services, svc)
		if r, ok := svc.(platform.Reactor); ok {
			subscriptions = append(subscriptions, r.Subscriptions()...)
		}
		if b, ok := svc.(platform.Background); ok && opts.Background {
			background = append(background, b)
		}
	}
	for _, fake := range opts.Fakes {
		fake(srv)
	}

	serveCtx, stopServing := context.WithCancel(ctx)
	busCtx, stopBus := context.WithCancel(ctx)
	var served, bus errgroup.Group
	served.Go(func() error { return srv.Serve(serveCtx, lis) })
	for _, sub := range subscriptions {
		consumer, err := events.NewConsumer(opts.Consumer, sub, busRedis, keys, tel, logger)
		if err != nil {
			t.Fatal(err)
		}
		bus.Go(func() error { return consumer.Run(busCtx) })
	}
	for _, b := range background {
		bus.Go(func() error { return b.RunBackground(busCtx) })
	}
	bus.Go(func() error { return authn.Run(busCtx, busRedis) })
	// The key cache is dropped whole when its subscription starts: wait for that, so no test sees
	// a cached key looked up again on a later call.
	select {
	case <-authn.Following():
	case <-time.After(10 * time.Second):
		t.Fatal("the API key cache did not subscribe to key changes within 10 s")
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.Conn = conn
	// Stop what calls the server before the server: a graceful stop waits for every connection.
	t.Cleanup(func() {
		stopBus()
		if err := bus.Wait(); err != nil {
			t.Errorf("event consumers stopped with %v", err)
		}
		_ = conn.Close()
		_ = clients.Close()
		stopServing()
		if err := served.Wait(); err != nil {
			t.Errorf("gRPC server stopped with %v", err)
		}
	})
	return s
}

// tracedClient is a client of the server at url traced into the suite's spans, as a process's
// client is, so a test sees a call's trace reach Redis.
func tracedClient(t testing.TB, tel *telemetry.Telemetry, url string) redis.UniversalClient {
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: url}, tel.TracerProvider, tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// busClient is a client of the server at url with room for every partition's blocking read of
// several subscriptions.
func busClient(t testing.TB, url string) redis.UniversalClient {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 8*Partitions + 8
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewKey creates a tenant (or uses tenant when given) and an API key with scopes; it returns the
// tenant and the key's secret.
func (s *Suite) NewKey(t testing.TB, tenant string, scopes ...string) (string, string) {
	t.Helper()
	return NewKey(t, s.Redis, tenant, scopes...)
}

// NewKey creates a tenant (or uses tenant when given) and an API key with scopes in rdb.
func NewKey(t testing.TB, rdb redis.UniversalClient, tenant string, scopes ...string) (string, string) {
	t.Helper()
	store := auth.NewStore(rdb)
	ctx := context.Background()
	if tenant == "" {
		tenant = redistest.Tenant(t)
		if _, err := store.CreateTenant(ctx, tenant, "Test "+tenant); err != nil {
			t.Fatal(err)
		}
	}
	k, err := store.CreateKey(ctx, tenant, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return tenant, k.Secret
}

// WithKey returns ctx with key as the call's bearer credential (none when key is empty).
func WithKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// Footprint counts the Redis keys a tenant owns in a service and the events of the tenant on the
// service's stream, to prove that a refused request wrote nothing.
func (s *Suite) Footprint(t testing.TB, service, tenant string) (keys, events int) {
	t.Helper()
	ctx := context.Background()
	iter := s.Redis.Scan(ctx, 0, "crm:*:"+service+":"+tenant+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, len(s.Events(t, service, tenant, ""))
}

// Events decodes a tenant's events of one type (every type when empty) from the service's stream,
// oldest first.
func (s *Suite) Events(t testing.TB, service, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	stream := s.Deps.Keys.Stream(service, s.Deps.Keys.Partition(tenant))
	var out []*eventv1.Event
	// Page through the stream: the partition is shared by every tenant of the package's tests, and
	// one XRANGE over a stream the large cases filled can outlast the client's read timeout.
	for start := "-"; ; {
		msgs, err := s.Redis.XRangeN(context.Background(), stream, start, "+", eventsPage).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			ev, err := events.Decode([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetTenantId() == tenant && (eventType == "" || ev.GetType() == eventType) {
				out = append(out, ev)
			}
		}
		if len(msgs) < eventsPage {
			return out
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// eventsPage is how many stream entries Events reads at a time.
const eventsPage = 1000
