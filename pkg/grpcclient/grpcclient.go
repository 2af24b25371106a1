// Package grpcclient dials other services: one shared connection per target, traced with otelgrpc,
// a deadline on every call, and the caller's credential forwarded so the callee authenticates the
// same principal.
package grpcclient

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// requestIDHeader is the metadata key of the request id, the one grpcserver reads.
const requestIDHeader = "x-request-id"

// KeepaliveTime is how often an idle connection is pinged; servers permit it (grpcserver).
const KeepaliveTime = 30 * time.Second

// Config of outbound calls.
type Config struct {
	// Timeout applies to calls whose context has no deadline.
	Timeout time.Duration
	// TLS, when set, dials with TLS instead of plaintext.
	TLS *tls.Config
}

// Pool hands out one connection per target.
type Pool struct {
	cfg   Config
	tel   *telemetry.Telemetry
	pass  atomic.Pointer[ratelimit.Pass]
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewPool returns an empty pool.
func NewPool(cfg Config, tel *telemetry.Telemetry) *Pool {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Pool{cfg: cfg, tel: tel, conns: map[string]*grpc.ClientConn{}}
}

// Conn returns the shared connection to target (host:port), creating it on first use.
func (p *Pool) Conn(target string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[target]; ok {
		return c, nil
	}
	creds := insecure.NewCredentials()
	if p.cfg.TLS != nil {
		creds = credentials.NewTLS(p.cfg.TLS)
	}
	c, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(p.tel.TracerProvider),
			otelgrpc.WithMeterProvider(p.tel.MeterProvider),
			otelgrpc.WithPropagators(p.tel.Propagator))),
		grpc.WithChainUnaryInterceptor(deadline(p.cfg.Timeout), forwardCredential, p.stampPass),
		// Spread calls over every address the name resolves to (every pod of a headless Service),
		// and notice a dead peer between calls; the servers close connections after a maximum
		// age, so the client re-resolves and finds replicas added since (grpcserver).
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// A restarted peer is found again within a few seconds (gRPC's default backoff grows to
		// two minutes, calls failing UNAVAILABLE meanwhile).
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second}}),
	)
	if err != nil {
		return nil, err
	}
	p.conns[target] = c
	return c, nil
}

// Admit marks, from now on, the calls made while serving an admitted client with pass, so the
// callee does not charge the client's rate limit again. The pool exists before the process's
// Redis, where the pass key lives, is open.
func (p *Pool) Admit(pass *ratelimit.Pass) { p.pass.Store(pass) }

func (p *Pool) stampPass(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if pass := p.pass.Load(); pass != nil {
		ctx = pass.Stamp(ctx)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for t, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, t)
	}
	return errors.Join(errs...)
}

func deadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// forwardCredential passes the incoming authorization on, unless the caller set its own, and the
// request id of the change in hand, so the callee's events carry the same one.
func forwardCredential(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	out, _ := metadata.FromOutgoingContext(ctx)
	if id := events.CauseFrom(ctx).RequestID; id != "" && len(out.Get(requestIDHeader)) == 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, requestIDHeader, id)
	}
	if len(out.Get("authorization")) == 0 {
		if in, ok := metadata.FromIncomingContext(ctx); ok {
			if v := in.Get("authorization"); len(v) > 0 {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v[0])
			}
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
