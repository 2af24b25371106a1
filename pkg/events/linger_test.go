package events_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// lingerConfig is fastConfig with a Linger no test outlives: a reader that lingers once stays
// paused for the rest of the test.
func lingerConfig(name string) events.ConsumerConfig {
	cfg := fastConfig(name)
	cfg.Linger, cfg.LeaseTTL = time.Hour, 2*time.Hour
	return cfg
}

// readsOf counts the XREADGROUPs a client sends for one stream.
type readsOf struct {
	stream string
	n      atomic.Int64
}

func (r *readsOf) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *readsOf) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xreadgroup" {
			for _, a := range cmd.Args() {
				if a == r.stream {
					r.n.Add(1)
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (r *readsOf) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A read that brings only entries of types the subscription skips pauses the partition's reader
// for Linger (it reads no more of that stream meanwhile, while the other partitions' readers keep
// polling); a read with an entry it handles does not, and neither does a full batch of skipped
// entries (the group is behind: it reads on at once until it has caught up).
func TestAReaderLingersAfterAReadOfSkippedEntriesOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		wanted, other := producer+".thing.wanted", producer+".thing.other"
		stream := b.keys.Scope(producer, tenant).Stream()

		// A backlog of 3 full batches and a part of one, all skipped: read without a pause.
		cfg := lingerConfig("lingering")
		for i := range 3*cfg.Batch + 2 {
			publishAs(ctx, t, b, producer, tenant, other, "", i)
		}
		var handled atomic.Int64
		counted := b.newClient(t)
		reads := &readsOf{stream: stream}
		counted.AddHook(reads)
		all := &redistest.Commands{}
		counted.AddHook(all)
		startConsumer(t, b, counted, cfg, events.Subscription{Group: group, Producer: producer, Types: []string{wanted},
			Handle: func(context.Context, *eventv1.Event) error { handled.Add(1); return nil }}, testTelemetry())
		eventually(t, 20*time.Second, "the skipped backlog acknowledged", func() bool {
			return groupRead(t, b, producer, group, stream) == int64(3*cfg.Batch+2) && pendingCount(t, b, producer, group) == 0
		})

		// The last read was a part of a batch, skipped: the reader lingers. Its stream is read no
		// more while every other partition is polled several times over.
		after := reads.n.Load()
		polls := all.Count("xreadgroup")
		eventually(t, 20*time.Second, "other partitions polled", func() bool {
			return all.Count("xreadgroup") >= polls+4*(partitions-1)
		})
		if got := reads.n.Load(); got != after {
			t.Errorf("the lingering partition was read %d more times, want none during Linger", got-after)
		}
		if after != 4 {
			t.Errorf("the backlog of %d skipped entries took %d reads, want 4 (%d a read, no pause)", 3*cfg.Batch+2, after, cfg.Batch)
		}
		if handled.Load() != 0 {
			t.Errorf("%d skipped entries handled", handled.Load())
		}
	})
}

// A read with an entry for the subscription does not linger: the next event is handled although
// Linger is longer than the test.
func TestAReaderDoesNotLingerAfterHandlingAnEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		wanted := producer + ".thing.wanted"
		var handled atomic.Int64
		startConsumer(t, b, b.rdb, lingerConfig("eager"), events.Subscription{Group: group, Producer: producer,
			Types: []string{wanted}, Handle: func(context.Context, *eventv1.Event) error { handled.Add(1); return nil }}, testTelemetry())
		publishAs(ctx, t, b, producer, tenant, wanted, "", 1)
		eventually(t, 20*time.Second, "the first wanted event handled", func() bool { return handled.Load() == 1 })
		publishAs(ctx, t, b, producer, tenant, wanted, "", 2)
		eventually(t, 20*time.Second, "the second wanted event handled", func() bool { return handled.Load() == 2 })
	})
}

// groupRead is how many entries of stream the group has been delivered.
func groupRead(t *testing.T, b backend, producer, group, stream string) int64 {
	t.Helper()
	groups, err := b.rdb.XInfoGroups(context.Background(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name == group {
			return g.EntriesRead
		}
	}
	return 0
}

// A negative Linger turns the pause off: after a read of skipped entries only, the partition is
// polled again like every other.
func TestANegativeLingerDoesNotPause(t *testing.T) {
	b := standaloneBackend(t)
	ctx := context.Background()
	producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
	stream := b.keys.Scope(producer, tenant).Stream()
	publishAs(ctx, t, b, producer, tenant, producer+".thing.other", "", 1)
	counted := redistest.Client(t)
	reads := &readsOf{stream: stream}
	counted.AddHook(reads)
	cfg := lingerConfig("eager")
	cfg.Linger = -1
	startConsumer(t, b, counted, cfg, events.Subscription{Group: group, Producer: producer, Types: []string{producer + ".thing.wanted"},
		Handle: func(context.Context, *eventv1.Event) error { return nil }}, testTelemetry())
	eventually(t, 20*time.Second, "the skipped entry acknowledged", func() bool {
		return groupRead(t, b, producer, group, stream) == 1 && pendingCount(t, b, producer, group) == 0
	})
	after := reads.n.Load()
	eventually(t, 20*time.Second, "the partition polled again", func() bool { return reads.n.Load() >= after+2 })
}
