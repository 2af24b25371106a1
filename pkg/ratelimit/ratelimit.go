// Package ratelimit limits calls per API key with GCRA on Redis (go-redis/redis_rate), so the limit
// holds across every process of a deployment. Over the limit, a call is RESOURCE_EXHAUSTED (HTTP
// 429) with a retry-after header saying when to come back.
package ratelimit

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"math"
	"strconv"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
)

// RetryAfterHeader is the gRPC header (and, through the gateway, the HTTP header) with the number
// of seconds to wait.
const RetryAfterHeader = "retry-after"

// ErrLimited is returned to a caller over its limit.
var ErrLimited = apierr.New(apierr.ResourceExhausted, "RATE_LIMITED", "too many requests for this API key; retry after the time in Retry-After")

// Config is the limit every API key gets.
type Config struct {
	// PerSecond is the sustained rate; 0 turns limiting off.
	PerSecond int
	// Burst is how many calls may come at once.
	Burst int
}

// RegisterFlags registers the rate-limit flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.PerSecond, "rate-limit", 1000, "calls per second per API key (0: no limit)")
	fs.IntVar(&c.Burst, "rate-burst", 2000, "calls an API key may make at once")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.PerSecond < 0 || (c.PerSecond > 0 && c.Burst < 1) {
		return errors.New("ratelimit: --rate-limit must be >= 0 and --rate-burst >= 1")
	}
	return nil
}

// Limiter applies the limit.
type Limiter struct {
	limiter *redis_rate.Limiter
	limit   redis_rate.Limit
	logger  *slog.Logger
}

// New returns a limiter, or nil when cfg turns limiting off.
func New(rdb redis.UniversalClient, cfg Config, logger *slog.Logger) *Limiter {
	if cfg.PerSecond == 0 {
		return nil
	}
	limit := redis_rate.PerSecond(cfg.PerSecond)
	limit.Burst = cfg.Burst
	return &Limiter{limiter: redis_rate.NewLimiter(rdb), limit: limit, logger: logger}
}

// UnaryServerInterceptor limits authenticated calls by their API key; it runs after
// authentication. When Redis cannot answer, calls pass: the limiter protects, it does not gate.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return handler(ctx, req)
		}
		res, err := l.limiter.Allow(ctx, "crm:ratelimit:"+p.TenantID+":"+p.KeyID, l.limit)
		if err != nil {
			l.logger.WarnContext(ctx, "rate limit unavailable, letting the call through", "error", err)
			return handler(ctx, req)
		}
		if res.Allowed == 0 {
			seconds := strconv.Itoa(int(math.Ceil(res.RetryAfter.Seconds())))
			_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterHeader, seconds))
			return nil, ErrLimited.With("retry_after_seconds", seconds)
		}
		return handler(ctx, req)
	}
}
