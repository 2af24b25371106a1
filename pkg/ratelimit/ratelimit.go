// Package ratelimit limits calls per API key with GCRA on Redis (go-redis/redis_rate), so the limit
// holds across every process of a deployment. Over the limit, a call is RESOURCE_EXHAUSTED (HTTP
// 429) with a retry-after header saying when to come back.
//
// Asking Redis on every call would double the round trips of a write, so a process takes tokens
// from the Redis bucket in small batches (a tenth of a second's worth) and spends them locally.
// Redis stays the one source of truth: a process never spends a token Redis did not grant, and
// unspent tokens lapse after leaseTTL, so a quiet key cannot save them up past its burst.
package ratelimit

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

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

// leaseTTL is how long granted tokens may wait to be spent.
const leaseTTL = time.Second

// maxLeases bounds the local table; past it the table starts over (unspent tokens lapse early).
const maxLeases = 100_000

// Limiter applies the limit.
type Limiter struct {
	limiter *redis_rate.Limiter
	limit   redis_rate.Limit
	batch   int
	logger  *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	leases map[string]*lease
}

// lease is the tokens this process holds for one key, or, after Redis refused, until when the key
// is refused without asking again.
type lease struct {
	tokens      int
	expires     time.Time
	deniedUntil time.Time
}

// New returns a limiter, or nil when cfg turns limiting off.
func New(rdb redis.UniversalClient, cfg Config, logger *slog.Logger) *Limiter {
	if cfg.PerSecond == 0 {
		return nil
	}
	limit := redis_rate.PerSecond(cfg.PerSecond)
	limit.Burst = cfg.Burst
	batch := max(1, min(cfg.PerSecond/10, cfg.Burst/10))
	return &Limiter{limiter: redis_rate.NewLimiter(rdb), limit: limit, batch: batch, logger: logger,
		now: time.Now, leases: map[string]*lease{}}
}

// local decides a call without Redis when it can: spend a held token, or refuse while Redis's last
// refusal stands (retry is then how long to wait). decided is false when Redis must be asked.
func (l *Limiter) local(key string, now time.Time) (decided, allowed bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[key]
	switch {
	case !ok:
		return false, false, 0
	case now.Before(ls.deniedUntil):
		return true, false, ls.deniedUntil.Sub(now)
	case ls.tokens > 0 && now.Before(ls.expires):
		ls.tokens--
		return true, true, 0
	}
	return false, false, 0
}

// record keeps Redis's answer: granted tokens (one spent by the current call), or a refusal.
func (l *Limiter) record(key string, granted int, retry time.Duration, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.leases) >= maxLeases {
		l.leases = map[string]*lease{}
	}
	if granted > 0 {
		l.leases[key] = &lease{tokens: granted - 1, expires: now.Add(leaseTTL)}
	} else {
		l.leases[key] = &lease{deniedUntil: now.Add(retry)}
	}
}

// UnaryServerInterceptor limits authenticated calls by their API key; it runs after
// authentication. When Redis cannot answer, calls pass: the limiter protects, it does not gate.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return handler(ctx, req)
		}
		key := "crm:ratelimit:" + p.TenantID + ":" + p.KeyID
		now := l.now()
		decided, allowed, retry := l.local(key, now)
		if !decided {
			res, err := l.limiter.AllowAtMost(ctx, key, l.limit, l.batch)
			if err != nil {
				l.logger.WarnContext(ctx, "rate limit unavailable, letting the call through", "error", err)
				return handler(ctx, req)
			}
			allowed, retry = res.Allowed > 0, res.RetryAfter
			l.record(key, res.Allowed, retry, now)
		}
		if !allowed {
			seconds := strconv.Itoa(max(1, int(math.Ceil(retry.Seconds()))))
			_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterHeader, seconds))
			return nil, ErrLimited.With("retry_after_seconds", seconds)
		}
		return handler(ctx, req)
	}
}
