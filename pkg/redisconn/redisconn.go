// Package redisconn opens the Redis client every process shares: standalone, Sentinel or Cluster
// from one URL, traced (tracing.go), measured with redisotel and by the round trips gRPC calls
// make (roundtrips.go).
package redisconn

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config selects the Redis deployment.
type Config struct {
	// URL is one of
	//   redis://[user:pass@]host:port[/db]          standalone (rediss:// for TLS)
	//   redis+cluster://host:port?addr=host2:port2  Redis Cluster (seed nodes)
	//   redis+sentinel://host:port?master_name=m    Sentinel-managed primary
	URL string
	// Partitions is the fixed hash-tag partition count (DESIGN.md §7).
	Partitions int
	// PoolSize overrides the connection pool size per node (0: the URL's pool_size, else
	// defaultPoolSize).
	PoolSize int
	// ClientName names the client's connections (CLIENT SETNAME), so CLIENT LIST and the bench's
	// MONITOR tell the request path's commands ("crm") from the event bus' ("crm-bus").
	ClientName string
	// AllowEphemeral silences the warning about a Redis that persists nothing (CheckDurability).
	AllowEphemeral bool
}

// RegisterFlags registers the Redis flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "redis-url", "", "Redis URL: redis://, rediss://, redis+cluster:// or redis+sentinel:// (env REDIS_URL)")
	fs.IntVar(&c.Partitions, "partitions", 16, "hash-tag partitions; fixed once data is written")
	fs.BoolVar(&c.AllowEphemeral, "allow-ephemeral-redis", false, "start without warning against a Redis that persists nothing (tests, demos)")
}

// Validate checks the URL's scheme.
func (c *Config) Validate() error {
	if c.URL == "" {
		return errors.New("redis: --redis-url is required")
	}
	if _, _, ok := strings.Cut(c.URL, "://"); !ok {
		return fmt.Errorf("redis: URL %q has no scheme", c.URL)
	}
	return nil
}

// Open connects, instruments the client and checks that Redis answers.
func Open(ctx context.Context, cfg Config, tp trace.TracerProvider, mp metric.MeterProvider) (redis.UniversalClient, error) {
	rdb, err := newClient(cfg.URL, cfg.PoolSize, cfg.ClientName)
	if err != nil {
		return nil, err
	}
	// Commands are traced under the span of the call or event handler that sends them, when that
	// span is sampled; the process's own background commands (stream polls, leases, health
	// pings) make no spans.
	instrumentTracing(rdb, tp)
	if err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(mp)); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: metrics: %w", err)
	}
	if err := instrumentRoundTrips(rdb, mp); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: metrics: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis: ping: %w", err)
	}
	return rdb, nil
}

func newClient(rawURL string, poolSize int, name string) (redis.UniversalClient, error) {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	switch scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opts.PoolSize = poolSizeOf(rawURL, poolSize, opts.PoolSize)
		opts.ClientName = name
		failFast(rawURL, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries)
		return redis.NewClient(opts), nil
	case "redis+cluster", "rediss+cluster":
		opts, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "+cluster") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opts.PoolSize = poolSizeOf(rawURL, poolSize, opts.PoolSize)
		opts.ClientName = name
		failFast(rawURL, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries)
		return redis.NewClusterClient(opts), nil
	case "redis+sentinel", "rediss+sentinel":
		opts, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "+sentinel") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opts.PoolSize = poolSizeOf(rawURL, poolSize, opts.PoolSize)
		opts.ClientName = name
		failFast(rawURL, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries)
		return redis.NewFailoverClient(opts), nil
	}
	return nil, fmt.Errorf("redis: unsupported URL scheme %q", scheme)
}

// defaultPoolSize is the connection pool per node of a client whose URL and Config set none:
// one connection for each call the gRPC server runs on its workers (grpcserver's streamWorkers),
// instead of go-redis's 10 per core (20 on a 2-core machine). With 20, calls queued inside crm
// for a connection whenever Redis was busy for a moment (a consumer's long script, a burst):
// under CaptureLead at half load, 129 waits of 11 ms each on average in one 10 s run, all in the
// latency tail. Each such call's command reached Redis only after another call's reply came
// back, one more round behind the consumers' connections; with a connection each, they reach it
// together and are served in its next rounds. Connections are made only as calls need them.
const defaultPoolSize = 128

// poolSizeOf is the pool size: the Config's, else the URL's (parsed), else defaultPoolSize.
func poolSizeOf(rawURL string, configured, parsed int) int {
	switch {
	case configured > 0:
		return configured
	case strings.Contains(rawURL, "pool_size="):
		return parsed
	}
	return defaultPoolSize
}

// The request path's budget against Redis: a call that cannot reach Redis answers UNAVAILABLE
// within about a second (DESIGN.md §8) instead of go-redis's defaults (5 s to dial, 3 s to read,
// three retries). Nothing is retried inside go-redis (-1 turns its retries off): a write script
// whose reply timed out may have run, and running it again would either answer a spurious ABORTED
// (its version check now fails) or apply an unchecked effect twice. The caller sees UNAVAILABLE
// and retries with its idempotency key, which is safe.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = time.Second // a loaded machine answers slower than 500 ms now and then
	maxRetries  = -1
)

// failFast applies the request path's budget to what the URL does not set itself
// (dial_timeout, read_timeout, write_timeout, pool_timeout, max_retries).
func failFast(rawURL string, dial, read, write, pool *time.Duration, retries *int) {
	set := func(name string) bool { return strings.Contains(rawURL, name+"=") }
	if !set("dial_timeout") {
		*dial = dialTimeout
	}
	if !set("read_timeout") {
		*read = ioTimeout
	}
	if !set("write_timeout") {
		*write = ioTimeout
	}
	if !set("pool_timeout") {
		*pool = ioTimeout
	}
	if !set("max_retries") {
		*retries = maxRetries
	}
}

// LogTo sends go-redis's own messages (reconnects, pool trouble) to logger instead of the standard
// log package, so every line a process writes is JSON with trace ids. go-redis has one logger per
// process.
func LogTo(logger *slog.Logger) { redis.SetLogger(slogPrintf{logger}) }

type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	s.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// SharedKey returns the deployment's random key stored under name (for signing page tokens or
// service passes), creating it on first use; every process of the deployment reads the same one.
func SharedKey(ctx context.Context, rdb redis.UniversalClient, name string) ([]byte, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := rdb.SetNX(ctx, name, key, 0).Err(); err != nil {
		return nil, fmt.Errorf("redis: key %s: %w", name, err)
	}
	stored, err := rdb.Get(ctx, name).Bytes()
	if err != nil {
		return nil, fmt.Errorf("redis: key %s: %w", name, err)
	}
	return stored, nil
}
