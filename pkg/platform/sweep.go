package platform

import (
	"context"
	"time"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/logging"
)

// EveryPartition calls sweep for each partition of the key space in turn, at once and then every
// interval, until ctx is done. A failure is logged (the first, then at most one a minute: Redis
// away fails every partition of every round) and the round goes on with the next partition: the
// next round retries what failed. Several processes may sweep at once, so sweep must be safe to
// run concurrently with itself (the services' sweeps are versioned commits). The events a round
// writes name the sweep (name, for example "support.sla") as their actor.
func EveryPartition(ctx context.Context, deps Deps, name string, interval time.Duration, sweep func(ctx context.Context, partition int) error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var failures logging.Recurring
	for {
		round := events.WithCause(ctx, events.BySweep(name))
		for p := range deps.Keys.Partitions() {
			if ctx.Err() != nil {
				return
			}
			if err := sweep(round, p); err != nil && ctx.Err() == nil {
				failures.Warn(ctx, deps.Logger, "background sweep failed", "sweep", name, "partition", p, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
