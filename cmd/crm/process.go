package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/grpcclient"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/logging"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// authCacheTTL is how long a resolved API key is trusted without asking Redis again.
const authCacheTTL = 30 * time.Second

// processEnv is what the caller of runProcess may supply; zero values mean "make your own".
type processEnv struct {
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// OnReady is called with the bound addresses once everything listens.
	OnReady func(boundAddrs)
	// Now is the services' clock; time.Now when nil (crm dev --demo moves it back in time).
	Now func() time.Time
}

type boundAddrs struct {
	GRPC, HTTP, Admin string
}

// process is one running crm process: what every module uses (configuration, logger, telemetry,
// the pool of outbound connections), and what the modules build for the ones after them.
type process struct {
	cfg     processConfig
	now     func() time.Time
	logger  *slog.Logger
	tel     *telemetry.Telemetry
	clients *grpcclient.Pool

	rdb    redis.UniversalClient
	keys   *keyspace.Space
	tokens *pagetoken.Codec
	grpc   *grpcserver.Server
	bus    *bus
	bound  boundAddrs
}

// runProcess runs the modules the configured targets need until ctx is done or one of them fails,
// then stops them in reverse order (see modules), closes the outbound connections, flushes
// telemetry, and only then releases what the modules hold, Redis last.
func runProcess(ctx context.Context, cfg processConfig, env processEnv) (err error) {
	p := &process{cfg: cfg, now: env.Now, logger: env.Logger, tel: env.Telemetry}
	if p.now == nil {
		p.now = time.Now
	}
	table := p.modules()
	order, err := resolve(table, cfg.Targets)
	if err != nil {
		return err
	}
	if p.logger == nil {
		p.logger = logging.New(os.Stderr, cfg.LogLevel)
		redisconn.LogTo(p.logger)
	}
	if p.tel == nil {
		if p.tel, err = telemetry.Setup(ctx, strings.Join(cfg.Targets, "+")); err != nil {
			return err
		}
	}
	var clientTLS *tls.Config
	if cfg.GRPC.TLS() {
		if clientTLS, err = cfg.GRPC.ClientTLS(); err != nil {
			return err
		}
	}
	p.clients = grpcclient.NewPool(grpcclient.Config{Timeout: cfg.ClientTimeout, TLS: clientTLS}, p.tel)

	mods, err := initModules(ctx, table, order)
	if err == nil {
		err = runModules(ctx, mods, func() {
			if env.OnReady != nil {
				env.OnReady(p.bound)
			}
		})
		if err != nil {
			err = fmt.Errorf("serve: %w", err)
		}
	}
	// Telemetry is flushed once nothing records spans any more, and while Redis, whose pool its
	// gauges read, is still open.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = p.clients.Close()
	err = errors.Join(err, p.tel.Shutdown(flushCtx), closeModules(mods))
	if err == nil {
		p.logger.Info("stopped")
	}
	return err
}

// platformDeps are the shared parts handed to each service.
func (p *process) platformDeps() platform.Deps {
	return platform.Deps{
		Redis: p.rdb, Keys: p.keys, PageTokens: p.tokens, Telemetry: p.tel, Logger: p.logger, Now: p.now,
		Dial: p.dial, ImportBatchesInFlight: p.cfg.ImportBatchesInFlight, ImportMaxBytes: p.cfg.Gateway.MaxImportBytes,
	}
}

// dial returns the shared connection to a service, in this process or at its address flag.
func (p *process) dial(service string) (*grpc.ClientConn, error) {
	addr, ok := p.cfg.ServiceAddrs[service]
	if !ok || *addr == "" {
		return nil, fmt.Errorf("no address for the %s service: run it in this process or set --%s-addr", service, service)
	}
	return p.clients.Conn(*addr)
}

// ready is the readiness check of the admin endpoint and the gateway: Redis answers, and it is
// initialized with this process's partition count. The markers' read is the probe's one round trip,
// where a ping was.
func (p *process) ready(ctx context.Context) error { return p.keys.Check(ctx, p.rdb) }

// dialable turns a listen address such as "[::]:9090" into one a client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
