// Package ratelimit limits calls per API key with GCRA on Redis (go-redis/redis_rate), so the limit
// holds across every process of a deployment. Over the limit, a call is RESOURCE_EXHAUSTED (HTTP
// 429) with a retry-after header saying when to come back.
//
// Asking Redis on every call would double the round trips of a write, so a process takes tokens
// from the Redis bucket in small batches (a tenth of a second's worth) and spends them locally.
// Redis stays the one source of truth: a process never spends a token Redis did not grant, and
// unspent tokens lapse after leaseTTL, so a quiet key cannot save them up past its burst. One
// refill per key is in flight at a time; concurrent calls wait for it and share its tokens (they
// never each take a batch and overwrite one another's), and a call that finds the bucket empty
// waits briefly for the next token rather than being refused, so callers under the limit are
// never refused however they bunch up.
//
// Services call each other on a client's behalf; those calls carry a Pass, a mark the caller
// signs with a key clients cannot read, and are not charged again.
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
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
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

// maxWait is how long a call may wait for its key's next token: calls under the limit that
// arrive together are spaced out by a few milliseconds instead of refused, while a key over its
// limit finds the next token further away than this and is refused at once.
const maxWait = 200 * time.Millisecond

// maxRefillWait is how long a call waits for Redis to grant its key tokens before it passes
// without them. A Redis that holds commands without failing them (CLIENT PAUSE WRITE during a
// failover, a stall) would otherwise hold each call for the whole I/O timeout here and again for
// its own commands: two seconds to an honest 503 where DESIGN.md §8 gives one. Redis answers a
// refill in well under a millisecond; this is for when it does not answer at all.
const maxRefillWait = 250 * time.Millisecond

// unavailableFor is how long calls pass without asking after Redis could not answer, so an outage
// costs one timeout per key and second, not one per call.
const unavailableFor = time.Second

// maxLeases bounds the local table; past it the table starts over (unspent tokens lapse early).
const maxLeases = 100_000

// Limiter applies the limit.
type Limiter struct {
	limiter  *redis_rate.Limiter
	limit    redis_rate.Limit
	batch    int
	pass     *Pass
	refusals metric.Int64Counter
	logger   *slog.Logger
	now      func() time.Time

	mu     sync.Mutex
	leases map[string]*lease
}

// lease is what this process knows of one key's bucket: tokens Redis granted and not yet spent,
// the refill in flight (one per key: other calls wait for it and share what it brings), when
// Redis said the next token comes, and until when calls pass because Redis could not answer.
type lease struct {
	tokens    int
	expires   time.Time
	refill    chan struct{} // closed when the refill in flight lands; nil when none
	nextAt    time.Time
	passUntil time.Time
}

// New returns a limiter, or nil when cfg turns limiting off. Calls that carry pass's mark were
// admitted by the service that made them and are not charged again.
func New(rdb redis.UniversalClient, cfg Config, pass *Pass, mp metric.MeterProvider, logger *slog.Logger) *Limiter {
	if cfg.PerSecond == 0 {
		return nil
	}
	limit := redis_rate.PerSecond(cfg.PerSecond)
	limit.Burst = cfg.Burst
	batch := max(1, min(cfg.PerSecond/10, cfg.Burst/10))
	refusals, err := mp.Meter("github.com/crmcycle/crm/pkg/ratelimit").Int64Counter("crm.ratelimit.refusals",
		metric.WithDescription("calls refused with RESOURCE_EXHAUSTED because their API key was over its rate limit"))
	if err != nil {
		refusals, _ = noop.NewMeterProvider().Meter("").Int64Counter("")
	}
	return &Limiter{limiter: redis_rate.NewLimiter(rdb), limit: limit, batch: batch, pass: pass, refusals: refusals,
		logger: logger, now: time.Now, leases: map[string]*lease{}}
}

// admit takes a token for key: a held one, a share of the refill in flight, or one Redis grants
// now, waiting up to maxWait for the next. It returns how long to wait when the call is refused.
func (l *Limiter) admit(ctx context.Context, key string) (time.Duration, error) {
	deadline := l.now().Add(maxWait)
	for {
		l.mu.Lock()
		ls := l.lease(key)
		now := l.now()
		switch {
		case ls.tokens > 0 && now.Before(ls.expires):
			ls.tokens--
			l.mu.Unlock()
			return 0, nil
		case now.Before(ls.passUntil):
			l.mu.Unlock()
			return 0, nil
		case ls.refill != nil:
			landed := ls.refill
			l.mu.Unlock()
			if ok, err := l.awaitRefill(ctx, landed); !ok || err != nil {
				return 0, err
			}
			continue
		case now.Before(ls.nextAt):
			next := ls.nextAt
			l.mu.Unlock()
			if next.After(deadline) {
				return next.Sub(now), nil
			}
			timer := time.NewTimer(next.Sub(now))
			err := wait(ctx, nil, timer.C)
			timer.Stop()
			if err != nil {
				return 0, err
			}
			continue
		}
		landed := make(chan struct{})
		ls.refill = landed
		l.mu.Unlock()
		// The refill is the key's, not this call's: it runs on when the call gives up waiting
		// for it, and the calls that wait share what it brings.
		go l.refill(context.WithoutCancel(ctx), key, ls, landed)
		if ok, err := l.awaitRefill(ctx, landed); !ok || err != nil {
			return 0, err
		}
	}
}

// refill asks Redis for up to a batch of key's tokens and records the answer in ls.
func (l *Limiter) refill(ctx context.Context, key string, ls *lease, landed chan struct{}) {
	res, err := l.limiter.AllowAtMost(ctx, key, l.limit, l.batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	ls.refill = nil
	close(landed)
	now := l.now()
	switch {
	case err != nil:
		// The limiter protects, it does not gate: without Redis, calls pass for a while.
		ls.passUntil = now.Add(unavailableFor)
		l.logger.WarnContext(ctx, "rate limit unavailable, letting calls through", "error", err)
	case res.Allowed > 0:
		ls.tokens, ls.expires = res.Allowed, now.Add(leaseTTL)
	default:
		// Come back when a whole batch has refilled, not for each token: one round trip per batch.
		ls.nextAt = now.Add(res.RetryAfter + time.Duration(l.batch-1)*l.limit.Period/time.Duration(l.limit.Rate))
	}
}

// awaitRefill waits for a refill of the key's tokens to land, at most maxRefillWait: true when it
// landed (look at the lease again), false when the call is to pass without it.
func (l *Limiter) awaitRefill(ctx context.Context, landed <-chan struct{}) (bool, error) {
	timer := time.NewTimer(maxRefillWait)
	defer timer.Stop()
	select {
	case <-landed:
		return true, nil
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// lease returns key's lease, creating it; l.mu is held.
func (l *Limiter) lease(key string) *lease {
	ls, ok := l.leases[key]
	if !ok {
		if len(l.leases) >= maxLeases {
			l.leases = map[string]*lease{}
		}
		ls = &lease{}
		l.leases[key] = ls
	}
	return ls
}

// wait blocks until landed is closed or tick fires, or ctx is done.
func wait(ctx context.Context, landed <-chan struct{}, tick <-chan time.Time) error {
	select {
	case <-landed:
	case <-tick:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// StreamServerInterceptor charges a streaming call (an export, an import) one token when it
// opens, like a unary call: the limit is on calls per key, not rows. A stream's cost grows with its
// rows, but one key can hold only as many streams open as it is allowed calls, and each export or
// import is also bounded by its own pacing (pages of the store, batches of writes), so charging per
// row would make a million-row export take 1,000 s of a 1,000-per-second key's budget.
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := l.check(ss.Context()); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// check admits a call or refuses it with ErrLimited and the retry-after header.
func (l *Limiter) check(ctx context.Context) error {
	p, ok := auth.FromContext(ctx)
	if !ok || (l.pass != nil && l.pass.admitted(ctx, p)) {
		return nil
	}
	retry, err := l.admit(ctx, "crm:ratelimit:"+p.TenantID+":"+p.KeyID)
	if err != nil {
		return err
	}
	if retry > 0 {
		l.refusals.Add(ctx, 1)
		seconds := strconv.Itoa(max(1, int(math.Ceil(retry.Seconds()))))
		_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterHeader, seconds))
		return ErrLimited.With("retry_after_seconds", seconds)
	}
	return nil
}

// UnaryServerInterceptor limits authenticated calls by their API key; it runs after
// authentication. A call another service makes on an admitted client's behalf passes uncharged.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := l.check(ctx); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}
