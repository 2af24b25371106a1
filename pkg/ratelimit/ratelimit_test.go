package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// countingHook counts the commands a client sends.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

func TestLimitHoldsWithFewRoundTrips(t *testing.T) {
	rdb := redistest.Client(t)
	hook := &countingHook{}
	rdb.AddHook(hook)
	const rate, burst = 100, 100
	limiter := ratelimit.New(rdb, ratelimit.Config{PerSecond: rate, Burst: burst}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	intercept := limiter.UnaryServerInterceptor()
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{TenantID: redistest.Tenant(t), KeyID: "k1"})
	ok := func(context.Context, any) (any, error) { return "ok", nil }

	start := time.Now()
	allowed := 0
	for range 300 {
		if _, err := intercept(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, ok); err == nil {
			allowed++
		}
	}
	elapsed := time.Since(start)
	// Never more than the burst plus what refilled meanwhile.
	if most := burst + int(elapsed.Seconds()*rate) + 1; allowed > most || allowed < burst/2 {
		t.Fatalf("allowed %d of 300 calls in %v, want between %d and %d", allowed, elapsed, burst/2, most)
	}
	// Tokens come in batches of a tenth of a second's worth, and a refusal stands until its retry
	// time: one round trip per batch of 10, plus a few per token refilled during the run (GCRA
	// answers partial refills with short retry times), plus the script load; never one per call.
	refills := int64(elapsed.Seconds()*rate) + 1
	if cmds, most := hook.n.Load(), int64(burst/10)+4*refills+6; cmds > most || cmds >= 150 {
		t.Fatalf("%d Redis commands for 300 calls (%d allowed, %v), want at most %d", cmds, allowed, elapsed, most)
	}
}
