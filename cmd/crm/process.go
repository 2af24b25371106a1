package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/adminhttp"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/grpcclient"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/logging"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/telemetry"
	marketing "github.com/crmcycle/crm/services/marketing/server"
	product "github.com/crmcycle/crm/services/product/server"
	sales "github.com/crmcycle/crm/services/sales/server"
	support "github.com/crmcycle/crm/services/support/server"
)

// authCacheTTL is how long a resolved API key is trusted without asking Redis again.
const authCacheTTL = 30 * time.Second

// processEnv is what the caller of runProcess may supply; zero values mean "make your own".
type processEnv struct {
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// OnReady is called with the bound addresses once everything listens.
	OnReady func(boundAddrs)
}

type boundAddrs struct {
	GRPC, HTTP, Admin string
}

func newService(name string, deps platform.Deps) (platform.Service, error) {
	switch name {
	case marketing.Name:
		return marketing.New(deps)
	case sales.Name:
		return sales.New(deps)
	case product.Name:
		return product.New(deps)
	default:
		return support.New(deps)
	}
}

// runProcess runs the configured targets until ctx is done, then shuts down in order: the gateway
// drains its requests, gRPC health turns NOT_SERVING and in-flight calls drain, event consumers
// finish the event in hand, outbound connections close, telemetry is flushed, and Redis is closed
// last.
func runProcess(ctx context.Context, cfg processConfig, env processEnv) (err error) {
	logger := env.Logger
	if logger == nil {
		logger = logging.New(os.Stderr, cfg.LogLevel)
		redisconn.LogTo(logger)
	}
	tel := env.Telemetry
	if tel == nil {
		if tel, err = telemetry.Setup(ctx, strings.Join(cfg.Targets, "+")); err != nil {
			return err
		}
	}
	var rdb redis.UniversalClient
	defer func() { // last of all: flush telemetry, then close Redis (STYLE.md habit 4)
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(flushCtx))
		if rdb != nil {
			_ = rdb.Close()
		}
	}()

	if rdb, err = redisconn.Open(ctx, cfg.Redis, tel.TracerProvider, tel.MeterProvider); err != nil {
		return err
	}
	keys, err := keyspace.Open(ctx, rdb, cfg.Redis.Partitions)
	if err != nil {
		return err
	}
	tokens, err := pagetoken.Load(ctx, rdb)
	if err != nil {
		return err
	}
	clients := grpcclient.NewPool(grpcclient.Config{Timeout: cfg.ClientTimeout, TLS: cfg.GRPC.CertFile != ""}, tel)
	defer clients.Close()

	var lc net.ListenConfig
	listen := func(addr string) (net.Listener, error) { return lc.Listen(ctx, "tcp", addr) }
	var bound boundAddrs
	g, gctx := errgroup.WithContext(ctx)
	// Each stage stops on its own signal, so shutdown can go in order (see below).
	stopGRPC, cancelGRPC := context.WithCancel(context.Background())
	defer cancelGRPC()
	grpcStopped := make(chan struct{})
	stopBus, cancelBus := context.WithCancel(context.Background())
	defer cancelBus()

	var subscriptions []events.Subscription
	if services := cfg.services(); len(services) > 0 {
		srv, err := grpcserver.New(cfg.GRPC, grpcserver.Deps{
			Logger: logger, Telemetry: tel, Redis: rdb,
			Authenticator: auth.NewAuthenticator(auth.NewStore(rdb), authCacheTTL),
			RateLimiter:   ratelimit.New(rdb, cfg.RateLimit, logger),
			Idempotency:   idempotency.New(rdb, keys, idempotency.Config{}),
		})
		if err != nil {
			return err
		}
		// Bind before building the services, so a service can dial another one in this process.
		lis, err := listen(cfg.GRPC.Addr)
		if err != nil {
			return err
		}
		bound.GRPC = lis.Addr().String()
		for _, name := range services {
			if *cfg.ServiceAddrs[name] == "" {
				*cfg.ServiceAddrs[name] = dialable(bound.GRPC)
			}
		}
		deps := platform.Deps{Redis: rdb, Keys: keys, PageTokens: tokens, Telemetry: tel, Logger: logger, Clients: clients, Now: time.Now,
			Dial: func(service string) (*grpc.ClientConn, error) {
				addr, ok := cfg.ServiceAddrs[service]
				if !ok || *addr == "" {
					return nil, fmt.Errorf("no address for the %s service: run it in this process or set --%s-addr", service, service)
				}
				return clients.Conn(*addr)
			}}
		var background []platform.Background
		for _, name := range services {
			svc, err := newService(name, deps)
			if err != nil {
				return err
			}
			svc.Register(srv)
			if r, ok := svc.(platform.Reactor); ok {
				subscriptions = append(subscriptions, r.Subscriptions()...)
			}
			if b, ok := svc.(platform.Background); ok {
				background = append(background, b)
			}
		}
		g.Go(func() error { defer close(grpcStopped); return srv.Serve(stopGRPC, lis) })
		logger.Info("gRPC listening", "addr", bound.GRPC, "services", services)

		busRedis := rdb
		if len(subscriptions) > 0 {
			// Blocking stream reads hold a connection each: give them their own pool, so they
			// never queue requests behind them.
			busCfg := cfg.Redis
			busCfg.PoolSize = keys.Partitions()*len(subscriptions) + 8
			if busRedis, err = redisconn.Open(ctx, busCfg, tel.TracerProvider, tel.MeterProvider); err != nil {
				return err
			}
			defer busRedis.Close()
		}
		for _, sub := range subscriptions {
			consumer, err := events.NewConsumer(cfg.Bus.Consumer, sub, busRedis, keys, tel, logger)
			if err != nil {
				return err
			}
			g.Go(func() error { return consumer.Run(stopBus) })
		}
		g.Go(func() error {
			events.RunRetention(stopBus, rdb, keys, services, cfg.Bus.Retention, logger)
			return nil
		})
		for _, b := range background {
			g.Go(func() error { return b.RunBackground(stopBus) })
		}
	} else {
		close(grpcStopped)
	}

	ready := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	var httpServers []*http.Server
	serveHTTP := func(name, addr string, h http.Handler, tls bool) (string, error) {
		lis, err := listen(addr)
		if err != nil {
			return "", err
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		httpServers = append(httpServers, hs)
		g.Go(func() error {
			var err error
			if tls {
				err = hs.ServeTLS(lis, cfg.GRPC.CertFile, cfg.GRPC.KeyFile)
			} else {
				err = hs.Serve(lis)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
		logger.Info(name+" listening", "addr", lis.Addr().String())
		return lis.Addr().String(), nil
	}

	if cfg.runs(gatewayTarget) {
		conns := map[string]*grpc.ClientConn{}
		for _, s := range serviceTargets {
			if conns[s], err = clients.Conn(*cfg.ServiceAddrs[s]); err != nil {
				return err
			}
		}
		h, err := gateway.New(ctx, cfg.Gateway, gateway.Backends{
			Marketing: conns["marketing"], Sales: conns["sales"], Product: conns["product"], Support: conns["support"],
		}, tel, ready)
		if err != nil {
			return err
		}
		if bound.HTTP, err = serveHTTP("REST gateway", cfg.Gateway.Addr, h, cfg.GRPC.CertFile != ""); err != nil {
			return err
		}
	}
	if bound.Admin, err = serveHTTP("admin", cfg.AdminAddr, adminhttp.Handler(tel.MetricsHandler, ready), false); err != nil {
		return err
	}

	// Shutdown order: the gateway drains its requests first, so their gRPC calls can finish; then
	// gRPC health goes NOT_SERVING and in-flight calls drain; then consumers finish the event in
	// hand. Telemetry is flushed and Redis closed by the deferred calls above.
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.GRPC.ShutdownTimeout)
		defer cancel()
		for _, hs := range httpServers {
			// Past the deadline, cut what is left (as gRPC does): connections that never sent a
			// request count as busy for seconds and must not turn a shutdown into a failure.
			if err := hs.Shutdown(shutdownCtx); err != nil {
				logger.Warn("http: drain timed out, closing remaining connections", "error", err)
				_ = hs.Close()
			}
		}
		cancelGRPC()
		<-grpcStopped
		cancelBus()
		return nil
	})
	if env.OnReady != nil {
		env.OnReady(bound)
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// dialable turns a listen address such as "[::]:9090" into one a client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
