package events_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// logLines is a log's output, written by the consumers while the test reads it.
type logLines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count is the number of lines containing every one of texts.
func (l *logLines) count(texts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.Lines(l.buf.String()) {
		if !slices.ContainsFunc(texts, func(s string) bool { return !strings.Contains(line, s) }) {
			n++
		}
	}
	return n
}

// failures counts the NOGROUP replies a client gets, and the commands that fail without a reply
// (Redis unreachable).
type failures struct{ nogroup, unreachable atomic.Int64 }

func (f *failures) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failures) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if redis.HasErrorPrefix(err, "NOGROUP") {
			f.nogroup.Add(1)
		} else if _, reply := errors.AsType[redis.Error](err); err != nil && !reply {
			f.unreachable.Add(1)
		}
		return err
	}
}

func (f *failures) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func startLoggingConsumer(t *testing.T, b backend, cfg events.ConsumerConfig, sub events.Subscription, logger *slog.Logger) {
	t.Helper()
	c, err := events.NewConsumer(cfg, sub, b.rdb, b.keys, testTelemetry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer %s: %v", cfg.Name, err)
		}
	})
}

// Redis loses its data under running consumers, flushed or restarted without persistence: their
// groups are gone, and every read is NOGROUP until an operator re-initializes the store. Meanwhile
// each partition's reader logs an error when it first occurs, not on every attempt (nor does it
// while Redis is down); after `crm admin redis init` (keyspace.Open) the consumers re-create their
// groups, each partition's once although two consumers race for it, and handle what is written
// from then on.
func TestConsumersRecreateTheirGroupsAfterRedisLostItsData(t *testing.T) {
	t.Run("flushed", func(t *testing.T) {
		testLostData(t, func(t *testing.T, srv *redistest.Server, rdb *redis.Client, f *failures, log *logLines) {
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("restarted", func(t *testing.T) {
		testLostData(t, func(t *testing.T, srv *redistest.Server, rdb *redis.Client, f *failures, log *logLines) {
			srv.Stop()
			// Ten failed attempts a reader (2 consumers, a reader a partition each): a line each
			// before the fix.
			eventually(t, 20*time.Second, "attempts failing while Redis is down", func() bool {
				return f.unreachable.Load() >= 2*10*partitions
			})
			// A reader's failures while Redis is down are a few texts (the read cut off, the
			// refused dial), each logged once.
			if n := log.count("events: read") + log.count("events: lease"); n == 0 || n > 2*4*partitions {
				t.Fatalf("%d read and lease errors logged for %d failed commands, want 1 to %d:\n%s",
					n, f.unreachable.Load(), 2*4*partitions, log)
			}
			srv.Start(t)
		})
	})
}

func testLostData(t *testing.T, lose func(t *testing.T, srv *redistest.Server, rdb *redis.Client, f *failures, log *logLines)) {
	ctx := context.Background()
	srv := redistest.NewServer(t) // its own: the test loses its data
	rdb := srv.Client(t)
	var failed failures
	rdb.AddHook(&failed)
	keys, err := keyspace.Open(ctx, rdb, partitions)
	if err != nil {
		t.Fatal(err)
	}
	b := backend{rdb: rdb, keys: keys}
	producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
	var log logLines
	logger := slog.New(slog.NewTextHandler(&log, nil))
	for _, name := range []string{"A", "B"} {
		startLoggingConsumer(t, b, fastConfig(name), events.Subscription{Group: group, Producer: producer,
			Handle: effect(rdb, keys, group)}, logger)
	}
	before := publish(ctx, t, b, producer, tenant, 1)
	eventually(t, 10*time.Second, "the event before the loss handled", func() bool {
		return effects(t, b, group, tenant)[before.GetId()] == "1"
	})

	lose(t, srv, rdb, &failed, &log)
	// Ten failed reads a partition: as many log lines as that, or thousands at the 1 ms
	// RetryBackoff, before the fix.
	nogroups := failed.nogroup.Load()
	eventually(t, 20*time.Second, "reads failing with NOGROUP", func() bool { return failed.nogroup.Load()-nogroups >= 10*partitions })
	// A partition's reader logs the error when it first occurs; each partition may change hands
	// once as the leases, gone too, are taken again. (Counted by their text, not from a mark taken
	// after the loss: the consumers may have logged them before the test got there.)
	if n := log.count("events: read", "NOGROUP"); n == 0 || n > 2*partitions {
		t.Fatalf("%d read errors logged for %d NOGROUP replies, want 1 to %d:\n%s", n, failed.nogroup.Load()-nogroups, 2*partitions, &log)
	}
	if n := log.count("events: consumer group re-created"); n != 0 {
		t.Fatalf("%d groups re-created before the store was initialized", n)
	}

	if _, err := keyspace.Open(ctx, rdb, partitions); err != nil { // crm admin redis init
		t.Fatal(err)
	}
	after := publish(ctx, t, b, producer, tenant, 2)
	eventually(t, 10*time.Second, "the event after re-initialization handled", func() bool {
		return effects(t, b, group, tenant)[after.GetId()] == "1"
	})
	eventually(t, 10*time.Second, "every partition's group re-created", func() bool {
		return log.count("events: consumer group re-created") >= partitions
	})
	for p := range partitions {
		groups, err := rdb.XInfoGroups(ctx, keys.Stream(producer, p)).Result()
		if err != nil || len(groups) != 1 || groups[0].Name != group {
			t.Fatalf("partition %d: groups %v, %v", p, groups, err)
		}
	}
	if n := log.count("events: consumer group re-created"); n != partitions {
		t.Fatalf("%d re-creations logged, want one a partition (%d)", n, partitions)
	}
}

// A group deleted by hand from a stream that keeps its entries is re-created from the stream's
// start: the group is delivered the old entries again, which the redelivery guard makes no-ops,
// and nothing written meanwhile is missed.
func TestAGroupDeletedByHandIsRecreatedFromTheStart(t *testing.T) {
	ctx := context.Background()
	b := standaloneBackend(t)
	producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
	apply := effect(b.rdb, b.keys, group)
	var mu sync.Mutex
	calls := map[string]int{}
	var log logLines
	startLoggingConsumer(t, b, fastConfig("A"), events.Subscription{Group: group, Producer: producer,
		Handle: func(ctx context.Context, ev *eventv1.Event) error {
			mu.Lock()
			calls[ev.GetId()]++
			mu.Unlock()
			return apply(ctx, ev)
		}}, slog.New(slog.NewTextHandler(&log, nil)))
	old := publish(ctx, t, b, producer, tenant, 1)
	eventually(t, 10*time.Second, "the first event handled", func() bool {
		return effects(t, b, group, tenant)[old.GetId()] == "1"
	})

	stream := b.keys.Scope(producer, tenant).Stream()
	if err := b.rdb.XGroupDestroy(ctx, stream, group).Err(); err != nil {
		t.Fatal(err)
	}
	next := publish(ctx, t, b, producer, tenant, 2)
	eventually(t, 10*time.Second, "the next event handled", func() bool {
		return effects(t, b, group, tenant)[next.GetId()] == "1"
	})
	mu.Lock()
	redelivered := calls[old.GetId()]
	mu.Unlock()
	if got := effects(t, b, group, tenant)[old.GetId()]; redelivered != 2 || got != "1" {
		t.Fatalf("first event delivered %d times (want 2: again from the start), applied %q times (want once)", redelivered, got)
	}
	if n := log.count("events: consumer group re-created"); n != 1 {
		t.Fatalf("%d re-creations logged, want 1", n)
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
