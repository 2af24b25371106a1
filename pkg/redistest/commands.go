package redistest

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/redisconn"
)

// Commands records the commands a client sends, by name and in order (a pipeline's one by one),
// for tests that count what a call costs Redis. Attach it with the client's AddHook.
type Commands struct {
	// Only, when set, counts only the commands sent with a context it accepts (e.g. those of a
	// request being served, leaving out event consumers sharing the client).
	Only func(ctx context.Context) bool

	mu    sync.Mutex
	names []string
	trips int // round trips: a pipeline is one
}

var _ redis.Hook = (*Commands)(nil)

// DialHook implements redis.Hook.
func (c *Commands) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.Only == nil || c.Only(ctx) {
			c.record(cmd)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c.Only == nil || c.Only(ctx) {
			c.record(cmds...)
		}
		return next(ctx, cmds)
	}
}

// Count is how many commands of one name (lower case, "evalsha") were sent so far.
func (c *Commands) Count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, got := range c.names {
		if got == name {
			n++
		}
	}
	return n
}

// Scripts is how many write scripts (EVALSHA or EVAL: each one atomic write) were run so far; the
// read scripts go as EVALSHA_RO or EVAL_RO and are not counted.
func (c *Commands) Scripts() int { return c.Count("evalsha") + c.Count("eval") }

func (c *Commands) record(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counted := false
	for _, cmd := range cmds {
		if redisconn.Handshake(cmd) {
			continue
		}
		counted = true
		c.names = append(c.names, cmd.Name())
	}
	if counted {
		c.trips++
	}
}

// Trips is how many round trips (a pipeline is one) were made since the last Take.
func (c *Commands) Trips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips
}

// Take returns the names of the commands sent since the last Take, and forgets them and their
// round trips.
func (c *Commands) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.names
	c.names, c.trips = nil, 0
	return out
}
