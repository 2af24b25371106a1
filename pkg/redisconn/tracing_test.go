package redisconn

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A command or pipeline outside a sampled span costs the hook no allocation: no attributes, no
// span options, no pipeline summary.
func TestUnsampledCommandsCostNothing(t *testing.T) {
	hook := newTracingHook(sdktrace.NewTracerProvider(), "tcp", "127.0.0.1:6379")
	ctx := context.Background()
	cmds := []redis.Cmder{redis.NewCmd(ctx, "set", "k", "v"), redis.NewCmd(ctx, "get", "k")}
	pipeline := hook.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })
	process := hook.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	if n := testing.AllocsPerRun(100, func() {
		_ = pipeline(ctx, cmds)
		_ = process(ctx, cmds[0])
	}); n != 0 {
		t.Errorf("allocations per unsampled command and pipeline: %v, want 0", n)
	}
}
