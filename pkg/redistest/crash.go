package redistest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ErrCrashed is what every command gets once a Crash hook has fired.
var ErrCrashed = errors.New("redistest: the process died")

// Crash is a Redis hook that lets scripts (every pkg/commit write is one) through until the n-th,
// then fails every command: the process died between two writes. Add it to a client of its own
// (AddHook), run the work, and count with Seen how many scripts a run that never dies makes.
type Crash struct {
	n, seen atomic.Int64
}

// CrashAfter returns a hook that dies after n scripts (never, for n < 0).
func CrashAfter(n int64) *Crash {
	c := &Crash{}
	if n < 0 {
		n = 1 << 62
	}
	c.n.Store(n)
	return c
}

// Seen is how many scripts went through.
func (c *Crash) Seen() int64 { return c.seen.Load() }

// DialHook implements redis.Hook.
func (c *Crash) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Crash) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.seen.Load() >= c.n.Load() {
			return ErrCrashed
		}
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.seen.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Crash) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c.seen.Load() >= c.n.Load() {
			return ErrCrashed
		}
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*Crash)(nil)
