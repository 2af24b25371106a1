package events_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// storeFaults are handler failures that say the store could not answer, in the shapes a handler
// returns them: a go-redis network timeout wrapped by the handler, the same wrapped in an apierr
// Unavailable, and a Redis call whose own deadline ran out (made real on rdb).
func storeFaults(ctx context.Context, rdb redis.UniversalClient) []error {
	timeout := fmt.Errorf("record: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
	expired, cancel := context.WithDeadline(ctx, time.Now())
	defer cancel()
	return []error{
		timeout,
		apierr.New(apierr.Unavailable, "STORE_UNAVAILABLE", "the data store is unavailable right now; retry").Wrap(timeout),
		rdb.Get(expired, "k").Err(),
	}
}

// TestStoreFaultsDoNotCountTowardDeadLettering fails one event's handler with store faults four
// times MaxDeliveries, then lets it through: the event is applied once and never dead-lettered,
// and the events around it are applied in order as usual.
func TestStoreFaultsDoNotCountTowardDeadLettering(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		first := publish(ctx, t, b, producer, tenant, 1)
		flaky := publish(ctx, t, b, producer, tenant, 2)
		last := publish(ctx, t, b, producer, tenant, 3)

		cfg := fastConfig("F")
		faults := storeFaults(ctx, b.rdb)
		want := int64(4 * cfg.MaxDeliveries)
		var calls atomic.Int64
		apply := effect(b.rdb, b.keys, group)
		startConsumer(t, b, b.rdb, cfg, events.Subscription{Group: group, Producer: producer,
			Handle: func(ctx context.Context, ev *eventv1.Event) error {
				if ev.GetId() == flaky.GetId() {
					if n := calls.Add(1); n <= want {
						return faults[int(n)%len(faults)]
					}
				}
				return apply(ctx, ev)
			}}, testTelemetry())

		eventually(t, 20*time.Second, "the flaky event applied or dead-lettered", func() bool {
			dead, err := events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(dead) > 0 || (len(effects(t, b, group, tenant)) == 3 && pendingCount(t, b, producer, group) == 0)
		})
		if dead, _ := events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10); len(dead) != 0 {
			t.Fatalf("dead-lettered after %d store faults: %d deliveries, error %q", calls.Load(), dead[0].Deliveries, dead[0].Error)
		}
		if n := calls.Load(); n != want+1 {
			t.Fatalf("flaky event handled %d times, want %d", n, want+1)
		}
		for _, ev := range []*eventv1.Event{first, flaky, last} {
			if got := effects(t, b, group, tenant)[ev.GetId()]; got != "1" {
				t.Fatalf("event %s applied %q times, want once", ev.GetId(), got)
			}
		}
	})
}

// TestPausedRedisDoesNotDeadLetter pauses a Redis's writes (CLIENT PAUSE WRITE, as an outage or
// failover does) while a handler writes to it: every try times out, far more often than
// MaxDeliveries, until the test lifts the pause. The event is then applied once, not
// dead-lettered.
func TestPausedRedisDoesNotDeadLetter(t *testing.T) {
	srv := redistest.NewServer(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	keys, err := keyspace.Open(ctx, rdb, partitions)
	if err != nil {
		t.Fatal(err)
	}
	b := backend{rdb: rdb, keys: keys}
	// The handler's client gives up on a reply after 20 ms, and does not retry on its own.
	opts := *rdb.Options()
	opts.ReadTimeout, opts.MaxRetries = 20*time.Millisecond, -1
	short := redis.NewClient(&opts)
	t.Cleanup(func() { _ = short.Close() })
	admin := srv.Client(t)

	producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
	ev := publish(ctx, t, b, producer, tenant, 1)
	cfg := fastConfig("P")
	var faulted atomic.Int64
	var paused atomic.Bool
	apply := effect(short, keys, group)
	startConsumer(t, b, rdb, cfg, events.Subscription{Group: group, Producer: producer,
		Handle: func(ctx context.Context, ev *eventv1.Event) error {
			if !paused.Swap(true) {
				if err := admin.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE").Err(); err != nil {
					return err
				}
			}
			err := apply(ctx, ev)
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				faulted.Add(1)
			}
			return err
		}}, testTelemetry())

	eventually(t, 20*time.Second, "the handler to time out on the paused Redis", func() bool {
		return faulted.Load() >= int64(4*cfg.MaxDeliveries)
	})
	if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the event applied and acknowledged", func() bool {
		return effects(t, b, group, tenant)[ev.GetId()] != "" && pendingCount(t, b, producer, group) == 0
	})
	if got := effects(t, b, group, tenant)[ev.GetId()]; got != "1" {
		t.Fatalf("event applied %q times, want once", got)
	}
	if dead, _ := events.DeadLetters(ctx, rdb, keys, producer, group, 10); len(dead) != 0 {
		t.Fatalf("dead-lettered: %d deliveries, error %q", dead[0].Deliveries, dead[0].Error)
	}
}
