package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/adminhttp"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redisconn"
	integration "github.com/crmcycle/crm/services/integration/server"
	marketing "github.com/crmcycle/crm/services/marketing/server"
	product "github.com/crmcycle/crm/services/product/server"
	sales "github.com/crmcycle/crm/services/sales/server"
	support "github.com/crmcycle/crm/services/support/server"
)

// The modules that are not targets; the targets (the services and the gateway) are in config.go.
const (
	redisModule = "redis"
	adminModule = "admin"
	busModule   = "bus"
	grpcModule  = "grpc-server"
)

// modules is the process's module table. Stopping goes in reverse of the build order, so the
// dependencies below also set the shutdown order: the gateway drains its requests (their gRPC calls
// can still finish), then gRPC health turns NOT_SERVING and in-flight calls drain, then the event
// consumers finish the event in hand, then the admin endpoint (probes and scrapes are answered
// until then), and Redis closes last, after the process has flushed its telemetry.
func (p *process) modules() map[string]module {
	// A service registers its API on the gRPC server and its reactions and sweeps on the bus.
	serviceDeps := []string{grpcModule, busModule}
	// Every module that serves depends on admin, so that it outlives them.
	return map[string]module{
		redisModule: {init: p.initRedis},
		adminModule: {deps: []string{redisModule}, init: p.initAdmin},
		busModule:   {deps: []string{redisModule, adminModule}, init: p.initBus},
		// Built after the bus so that its calls drain while the consumers still run.
		grpcModule:     {deps: []string{redisModule, adminModule, busModule}, init: p.initGRPCServer},
		marketing.Name: {deps: serviceDeps, init: p.mount(func(d platform.Deps) (platform.Service, error) { return marketing.New(d) })},
		sales.Name:     {deps: serviceDeps, init: p.mount(func(d platform.Deps) (platform.Service, error) { return sales.New(d) })},
		product.Name:   {deps: serviceDeps, init: p.mount(func(d platform.Deps) (platform.Service, error) { return product.New(d) })},
		support.Name:   {deps: serviceDeps, init: p.mount(func(d platform.Deps) (platform.Service, error) { return support.New(d) })},
		integration.Name: {deps: serviceDeps, init: p.mount(func(d platform.Deps) (platform.Service, error) {
			return integration.New(p.cfg.Integration, d)
		})},
		// The gateway dials the services; those in this process are mounted (and their address
		// known) before it, and drain after it.
		gatewayTarget: {deps: []string{redisModule, adminModule}, after: serviceTargets, init: p.initGateway},
	}
}

// initRedis opens the store and the key space and page-token keys recorded in it.
func (p *process) initRedis(ctx context.Context) (service, error) {
	cfg := p.cfg.Redis
	cfg.ClientName = "crm"
	rdb, err := redisconn.Open(ctx, cfg, p.tel.TracerProvider, p.tel.MeterProvider)
	if err != nil {
		return service{}, err
	}
	err = redisconn.CheckDurability(ctx, rdb, p.cfg.Redis, p.logger)
	if err == nil {
		p.keys, err = keyspace.Open(ctx, rdb, p.cfg.Redis.Partitions)
	}
	if err == nil {
		p.tokens, err = pagetoken.Load(ctx, rdb)
	}
	if err != nil {
		return service{}, errors.Join(err, rdb.Close())
	}
	p.rdb = rdb
	return service{close: rdb.Close}, nil
}

// initAdmin serves /metrics, /healthz and /readyz, always in plaintext, for scrapers and probes.
func (p *process) initAdmin(ctx context.Context) (service, error) {
	h := adminhttp.Handler(p.tel.MetricsHandler, p.ready)
	if p.cfg.Pprof {
		h = adminhttp.WithProfiling(h)
	}
	s, addr, err := p.serveHTTP(ctx, "admin", p.cfg.AdminAddr, h, false)
	p.bound.Admin = addr
	return s, err
}

// initBus prepares the bus; the services add their subscriptions and background work to it.
func (p *process) initBus(context.Context) (service, error) {
	p.bus = &bus{cfg: p.cfg.Bus, redisCfg: p.cfg.Redis, rdb: p.rdb, keys: p.keys, tel: p.tel, logger: p.logger}
	return service{run: p.bus.run}, nil
}

// initGRPCServer builds the server with the shared interceptor chain and binds it. It binds before
// the services are built, since a service dials the others as it is built.
func (p *process) initGRPCServer(ctx context.Context) (service, error) {
	pass, err := ratelimit.LoadPass(ctx, p.rdb)
	if err != nil {
		return service{}, err
	}
	p.clients.Admit(pass)
	authn := auth.NewAuthenticator(auth.NewStore(p.rdb), authCacheTTL)
	srv, err := grpcserver.New(p.cfg.GRPC, grpcserver.Deps{
		Logger: p.logger, Telemetry: p.tel, Redis: p.rdb, Ready: p.ready,
		Authenticator: authn,
		RateLimiter:   ratelimit.New(p.rdb, p.cfg.RateLimit, pass, p.tel.MeterProvider, p.logger),
		Idempotency:   idempotency.New(p.rdb, p.keys, idempotency.Config{}, p.tel.MeterProvider),
	})
	if err != nil {
		return service{}, err
	}
	lis, err := p.listen(ctx, p.cfg.GRPC.Addr)
	if err != nil {
		return service{}, err
	}
	p.grpc, p.bound.GRPC = srv, lis.Addr().String()
	// The services of this process reach each other here, unless an address flag says otherwise.
	for _, name := range p.cfg.services() {
		if addr := p.cfg.ServiceAddrs[name]; *addr == "" {
			*addr = dialable(p.bound.GRPC)
		}
	}
	p.logger.Info("gRPC listening", "addr", p.bound.GRPC, "services", p.cfg.services())
	return service{
		// The authenticator hears of revoked and rotated keys while the server serves.
		run: func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return authn.Run(ctx, p.rdb) })
			g.Go(func() error { return srv.Serve(ctx, lis) })
			return g.Wait()
		},
		close: closeUnserved(lis),
	}, nil
}

// mount builds a service from the process's shared parts, registers its API on the gRPC server and
// hands its event reactions and background work to the bus.
func (p *process) mount(build func(platform.Deps) (platform.Service, error)) func(context.Context) (service, error) {
	return func(context.Context) (service, error) {
		svc, err := build(p.platformDeps())
		if err != nil {
			return service{}, err
		}
		svc.Register(p.grpc)
		p.bus.add(svc)
		return service{}, nil
	}
}

// initGateway serves the REST edge over one connection per service, in this process or remote.
func (p *process) initGateway(ctx context.Context) (service, error) {
	conns := map[string]grpc.ClientConnInterface{}
	for _, s := range serviceTargets {
		if *p.cfg.ServiceAddrs[s] == "" {
			continue // not run anywhere (validated): the gateway answers its routes 503
		}
		conn, err := p.clients.Conn(*p.cfg.ServiceAddrs[s])
		if err != nil {
			return service{}, err
		}
		conns[s] = conn
	}
	h, err := gateway.New(ctx, p.cfg.Gateway, gateway.Backends{
		Marketing: conns[marketing.Name], Sales: conns[sales.Name], Product: conns[product.Name], Support: conns[support.Name],
		Integration: conns[integration.Name],
	}, p.tel, p.ready)
	if err != nil {
		return service{}, err
	}
	s, addr, err := p.serveHTTP(ctx, "REST gateway", p.cfg.Gateway.Addr, h, p.cfg.GRPC.TLS())
	p.bound.HTTP = addr
	return s, err
}

// serveHTTP binds addr and returns the service that serves h on it and, when stopped, drains it.
func (p *process) serveHTTP(ctx context.Context, name, addr string, h http.Handler, tls bool) (service, string, error) {
	lis, err := p.listen(ctx, addr)
	if err != nil {
		return service{}, "", err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	p.logger.Info(name+" listening", "addr", lis.Addr().String(), "scheme", scheme)
	run := func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() {
			if tls {
				served <- hs.ServeTLS(lis, p.cfg.GRPC.CertFile, p.cfg.GRPC.KeyFile)
			} else {
				served <- hs.Serve(lis)
			}
		}()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.GRPC.ShutdownTimeout)
		defer cancel()
		// Past the deadline, cut what is left (as gRPC does): connections that never sent a request
		// count as busy for seconds and must not turn a shutdown into a failure.
		if err := hs.Shutdown(drainCtx); err != nil {
			p.logger.Warn("http: drain timed out, closing remaining connections", "server", name, "error", err)
			_ = hs.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return service{run: run, close: closeUnserved(lis)}, lis.Addr().String(), nil
}

func (p *process) listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// closeUnserved closes a listener of a process that failed before serving it; a server closes the
// listeners it served, so the error of closing one again is of no interest.
func closeUnserved(lis net.Listener) func() error {
	return func() error {
		_ = lis.Close()
		return nil
	}
}
