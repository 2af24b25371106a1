package events_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const partitions = 8

// backend is one Redis deployment the bus must work on.
type backend struct {
	rdb       redis.UniversalClient
	keys      *keyspace.Space
	newClient func(t *testing.T) redis.UniversalClient
}

// eachBackend runs f on standalone Redis and on a 3-master Redis Cluster.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for name, newClient := range map[string]func(t *testing.T) redis.UniversalClient{
		"standalone": func(t *testing.T) redis.UniversalClient { return redistest.Client(t) },
		"cluster":    func(t *testing.T) redis.UniversalClient { return redistest.ClusterClient(t) },
	} {
		t.Run(name, func(t *testing.T) {
			rdb := newClient(t)
			keys, err := keyspace.Open(context.Background(), rdb, partitions)
			if err != nil {
				t.Fatal(err)
			}
			f(t, backend{rdb: rdb, keys: keys, newClient: newClient})
		})
	}
}

// standaloneBackend is the package's standalone Redis, for tests that need no Cluster run.
func standaloneBackend(t *testing.T) backend {
	t.Helper()
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, partitions)
	if err != nil {
		t.Fatal(err)
	}
	return backend{rdb: rdb, keys: keys}
}

// producerName gives each test its own streams and groups.
func producerName() string { return "p" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testTelemetry() *telemetry.Telemetry {
	return telemetry.ForTest(tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
}

// publish commits one event for tenant on the producer's stream, as a service's write would.
func publish(ctx context.Context, t testing.TB, b backend, producer, tenant string, n int) *eventv1.Event {
	t.Helper()
	return publishAs(ctx, t, b, producer, tenant, producer+".thing.happened", "", n)
}

// publishAs commits an event of type typ about customer ("" for none) with payload n.
func publishAs(ctx context.Context, t testing.TB, b backend, producer, tenant, typ, customer string, n int) *eventv1.Event {
	t.Helper()
	pub := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}
	ev, data, err := pub.Envelope(ctx, eventv1.Type[*wrapperspb.Int64Value]{Name: typ}.Of(wrapperspb.Int64(int64(n))), tenant, customer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.New().Append(b.keys.Scope(producer, tenant).Stream(), data).Run(ctx, b.rdb); err != nil {
		t.Fatal(err)
	}
	return ev
}

// effect applies an event exactly once: the effect (a counter per event id) and its redelivery
// guard commit together.
func effect(rdb redis.UniversalClient, keys *keyspace.Space, group string) events.Handler {
	return func(ctx context.Context, ev *eventv1.Event) error {
		scope := keys.Scope(group, ev.GetTenantId())
		return events.Guard(commit.New(), scope, events.EffectOf(ev, "count")).
			HIncrBy(scope.Key("effects"), ev.GetId(), 1).
			Run(ctx, rdb)
	}
}

func effects(t *testing.T, b backend, group, tenant string) map[string]string {
	t.Helper()
	m, err := b.rdb.HGetAll(context.Background(), b.keys.Scope(group, tenant).Key("effects")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastConfig(name string) events.ConsumerConfig {
	return events.ConsumerConfig{
		Name: name, Batch: 10, Block: 50 * time.Millisecond, ClaimIdle: 100 * time.Millisecond,
		MaxDeliveries: 3, RetryBackoff: time.Millisecond, LeaseTTL: 400 * time.Millisecond,
	}
}

func startConsumer(t *testing.T, b backend, rdb redis.UniversalClient, cfg events.ConsumerConfig, sub events.Subscription, tel *telemetry.Telemetry) (stop func()) {
	t.Helper()
	c, err := events.NewConsumer(cfg, sub, rdb, b.keys, tel, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer %s: %v", cfg.Name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func pendingCount(t *testing.T, b backend, producer, group string) int64 {
	t.Helper()
	lag, err := events.Lag(context.Background(), b.rdb, b.keys, producer)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, g := range lag {
		if g.Group == group {
			n += g.Pending
		}
	}
	return n
}

func TestFailedCheckWritesNeitherRecordNorEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		sc := b.keys.Scope("writer", redistest.Tenant(t))
		if err := commit.New().ExpectVersion(sc.Key("r", "1"), "").Unique(sc.Key("emails"), "a@x", "1").
			Put(sc.Key("r", "1"), []byte("one"), "1").Append(sc.Stream(), []byte("created")).Run(ctx, b.rdb); err != nil {
			t.Fatal(err)
		}
		before, err := b.rdb.XLen(ctx, sc.Stream()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range map[string]*commit.Write{
			"unique": commit.New().ExpectVersion(sc.Key("r", "2"), "").Unique(sc.Key("emails"), "a@x", "2").
				Put(sc.Key("r", "2"), []byte("two"), "1").ZAdd(sc.Key("all"), 0, "2").Append(sc.Stream(), []byte("created")),
			"etag": commit.New().ExpectVersion(sc.Key("r", "1"), "7").
				Put(sc.Key("r", "1"), []byte("changed"), "8").ZAdd(sc.Key("all"), 0, "1").Append(sc.Stream(), []byte("updated")),
		} {
			err := w.Run(ctx, b.rdb)
			var conflict *commit.UniqueConflictError
			if !errors.As(err, &conflict) && !errors.Is(err, commit.ErrVersionMismatch) {
				t.Fatalf("%s: got %v, want a conflict", name, err)
			}
		}
		after, _ := b.rdb.XLen(ctx, sc.Stream()).Result()
		exists, _ := b.rdb.Exists(ctx, sc.Key("r", "2"), sc.Key("all")).Result()
		// The record as stored (pkg/commit's Put): the version's length, the version, the data.
		data, _ := b.rdb.Get(ctx, sc.Key("r", "1")).Result()
		if after != before || exists != 0 || data != "\x011one" {
			t.Fatalf("failed writes left: %d new events, %d keys, record %q", after-before, exists, data)
		}
	})
}

func TestCrashedConsumersEntriesAreReclaimedAndAppliedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		const total = 40
		var ids []string
		for i := range total {
			ids = append(ids, publish(ctx, t, b, producer, tenant, i).GetId())
		}

		// Consumer A applies five effects, then "crashes" on the fifth before acknowledging it:
		// its connection drops, its context ends, its leases are never released.
		crashClient := b.newClient(t)
		reached, killed := make(chan struct{}), make(chan struct{})
		var handledByA atomic.Int64
		apply := effect(crashClient, b.keys, group)
		stopA := startConsumer(t, b, crashClient, fastConfig("A"), events.Subscription{Group: group, Producer: producer,
			Handle: func(ctx context.Context, ev *eventv1.Event) error {
				if err := apply(ctx, ev); err != nil {
					return err
				}
				if handledByA.Add(1) == 5 {
					close(reached)
					<-killed
				}
				return nil
			}}, testTelemetry())
		<-reached
		_ = crashClient.Close()
		go stopA()
		close(killed)

		startConsumer(t, b, b.rdb, fastConfig("B"), events.Subscription{Group: group, Producer: producer,
			Handle: effect(b.rdb, b.keys, group)}, testTelemetry())
		eventually(t, 20*time.Second, "every event applied and acknowledged", func() bool {
			return len(effects(t, b, group, tenant)) == total && pendingCount(t, b, producer, group) == 0
		})
		got := effects(t, b, group, tenant)
		for _, id := range ids {
			if got[id] != "1" {
				t.Errorf("event %s applied %q times, want once", id, got[id])
			}
		}
	})
}

func TestPoisonEventIsDeadLetteredThenReplayedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		first := publish(ctx, t, b, producer, tenant, 1)
		poison := publish(ctx, t, b, producer, tenant, 2)
		last := publish(ctx, t, b, producer, tenant, 3)

		var fixed atomic.Bool
		var poisonAttempts atomic.Int64
		apply := effect(b.rdb, b.keys, group)
		startConsumer(t, b, b.rdb, fastConfig("C"), events.Subscription{Group: group, Producer: producer,
			Handle: func(ctx context.Context, ev *eventv1.Event) error {
				if ev.GetId() == poison.GetId() && !fixed.Load() {
					poisonAttempts.Add(1)
					return errors.New("boom: cannot handle this one")
				}
				return apply(ctx, ev)
			}}, testTelemetry())

		var dead []events.DeadLetter
		eventually(t, 10*time.Second, "the poison event dead-lettered", func() bool {
			var err error
			dead, err = events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(dead) == 1 && len(effects(t, b, group, tenant)) == 2
		})
		d := dead[0]
		if d.Event.GetId() != poison.GetId() || d.Deliveries != 3 || !strings.Contains(d.Error, "boom") {
			t.Fatalf("dead letter = {event %s, deliveries %d, error %q}, want {%s, 3, boom...}", d.Event.GetId(), d.Deliveries, d.Error, poison.GetId())
		}
		if n := poisonAttempts.Load(); n != 3 {
			t.Fatalf("poison event handled %d times, want 3 (MaxDeliveries)", n)
		}
		got := effects(t, b, group, tenant)
		if got[first.GetId()] != "1" || got[last.GetId()] != "1" {
			t.Fatalf("healthy events not applied around the poison one: %v", got)
		}

		fixed.Store(true)
		n, err := events.ReplayDeadLetters(ctx, b.rdb, b.keys, producer, group, nil)
		if err != nil || n != 1 {
			t.Fatalf("replay = %d, %v; want 1", n, err)
		}
		eventually(t, 10*time.Second, "the replayed event applied", func() bool {
			return effects(t, b, group, tenant)[poison.GetId()] == "1" && pendingCount(t, b, producer, group) == 0
		})
		if left, _ := events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10); len(left) != 0 {
			t.Fatalf("%d dead letters left after replay", len(left))
		}
		if n, _ := events.ReplayDeadLetters(ctx, b.rdb, b.keys, producer, group, nil); n != 0 {
			t.Fatalf("second replay moved %d events", n)
		}
		for id, count := range effects(t, b, group, tenant) {
			if count != "1" {
				t.Fatalf("event %s applied %s times", id, count)
			}
		}
	})
}

// tenantsCovering returns n tenants per partition, so every partition stream gets traffic.
func tenantsCovering(t *testing.T, keys *keyspace.Space, n int) []string {
	perPartition := map[int]int{}
	var out []string
	for len(out) < n*keys.Partitions() {
		tenant := redistest.Tenant(t)
		if p := keys.Partition(tenant); perPartition[p] < n {
			perPartition[p]++
			out = append(out, tenant)
		}
	}
	return out
}

func TestManyProducersAndConsumersLoseNothingAndKeepOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group := producerName(), "reactor"
		tenants := tenantsCovering(t, b.keys, 4)
		const producers, perProducer = 8, 1250

		var mu sync.Mutex
		handled := map[string][]string{} // stream -> entry ids in handling order
		byConsumer := map[string]int{}
		apply := effect(b.rdb, b.keys, group)
		for _, name := range []string{"c1", "c2", "c3"} {
			cfg := fastConfig(name)
			cfg.Batch, cfg.LeaseTTL = 64, 3*time.Second
			startConsumer(t, b, b.rdb, cfg, events.Subscription{Group: group, Producer: producer,
				Handle: func(ctx context.Context, ev *eventv1.Event) error {
					if err := apply(ctx, ev); err != nil {
						return err
					}
					d, _ := events.DeliveryFrom(ctx)
					mu.Lock()
					handled[d.Stream] = append(handled[d.Stream], d.EntryID)
					byConsumer[name]++
					mu.Unlock()
					return nil
				}}, testTelemetry())
		}
		// Let the three share the partitions before the load starts.
		eventually(t, 20*time.Second, "three consumers holding leases", func() bool {
			holders := map[string]bool{}
			for p := range b.keys.Partitions() {
				if h, err := b.rdb.Get(ctx, b.keys.Lease(producer, p, group)).Result(); err == nil {
					holders[h] = true
				}
			}
			return len(holders) == 3
		})

		var wg sync.WaitGroup
		for w := range producers {
			wg.Go(func() {
				for i := range perProducer {
					publish(ctx, t, b, producer, tenants[(w*perProducer+i)%len(tenants)], i)
				}
			})
		}
		wg.Wait()
		const total = producers * perProducer
		count := func() int {
			n := 0
			for _, tenant := range tenants {
				n += len(effects(t, b, group, tenant))
			}
			return n
		}
		eventually(t, 60*time.Second, fmt.Sprintf("%d events applied", total), func() bool {
			return count() == total && pendingCount(t, b, producer, group) == 0
		})
		for _, tenant := range tenants {
			for id, c := range effects(t, b, group, tenant) {
				if c != "1" {
					t.Fatalf("event %s applied %s times", id, c)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		calls := 0
		for stream, ids := range handled {
			calls += len(ids)
			for i := 1; i < len(ids); i++ {
				prev, cur := ids[i-1], ids[i]
				if !entryLess(prev, cur) {
					t.Fatalf("%s: entry %s handled after %s", stream, cur, prev)
				}
			}
		}
		if calls != total {
			t.Fatalf("handler called %d times for %d events", calls, total)
		}
		for _, name := range []string{"c1", "c2", "c3"} {
			if byConsumer[name] == 0 {
				t.Errorf("consumer %s handled nothing: partitions are not shared (%v)", name, byConsumer)
			}
		}
	})
}

func entryLess(a, b string) bool {
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	return am < bm || (am == bm && as < bs)
}

func TestTrimmingNeverDropsWhatAGroupStillNeeds(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, tenant := producerName(), redistest.Tenant(t)
		stream := b.keys.Scope(producer, tenant).Stream()
		for i := range 100 {
			publish(ctx, t, b, producer, tenant, i)
		}
		for _, g := range []string{"slow", "done"} {
			if err := b.rdb.XGroupCreate(ctx, stream, g, "0").Err(); err != nil {
				t.Fatal(err)
			}
		}
		read := func(group string, n int64) []redis.XMessage {
			res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "x", Streams: []string{stream, ">"}, Count: n}).Result()
			if err != nil {
				t.Fatal(err)
			}
			return res[0].Messages
		}
		ack := func(group string, msgs []redis.XMessage) {
			for _, m := range msgs {
				if err := b.rdb.XAck(ctx, stream, group, m.ID).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		ack("done", read("done", 100))
		slow := read("slow", 30) // 30 delivered to "slow": the first 10 acknowledged, 20 pending
		ack("slow", slow[:10])

		policy := events.Retention{MaxLen: 5, MaxAge: time.Minute}
		trimmed, err := events.TrimStream(ctx, b.rdb, stream, policy, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if trimmed != 10 {
			t.Fatalf("trimmed %d entries, want the 10 every group acknowledged", trimmed)
		}
		for _, m := range slow[10:] {
			got, err := b.rdb.XRange(ctx, stream, m.ID, m.ID).Result()
			if err != nil || len(got) != 1 {
				t.Fatalf("pending entry %s is gone after trimming (%v)", m.ID, err)
			}
		}
		if n, _ := b.rdb.XLen(ctx, stream).Result(); n != 90 {
			t.Fatalf("stream has %d entries, want 90", n)
		}

		ack("slow", slow[10:])
		ack("slow", read("slow", 100))
		if _, err := events.TrimStream(ctx, b.rdb, stream, events.Retention{MaxLen: 5}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.rdb.XLen(ctx, stream).Result(); n != 5 {
			t.Fatalf("after everything is acknowledged the stream has %d entries, want MaxLen 5", n)
		}
	})
}

// TestConsumerSpanIsAChildOfTheProducerSpan: the handler of one event runs in a consumer span
// whose parent is the span that published it (one trace across the bus), and which links to it.
func TestConsumerSpanIsAChildOfTheProducerSpan(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		tel := telemetry.ForTest(tp, metricnoop.NewMeterProvider())
		producer, tenant := producerName(), redistest.Tenant(t)

		ctx, rpc := tp.Tracer("test").Start(context.Background(), "crm.test.v1.TestService/Write", trace.WithSpanKind(trace.SpanKindServer))
		pub := events.Publisher{Producer: producer, Propagator: tel.Propagator}
		happened := eventv1.Type[*wrapperspb.StringValue]{Name: producer + ".thing.happened"}
		_, data, err := pub.Envelope(ctx, happened.Of(wrapperspb.String("x")), tenant, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := commit.New().Append(b.keys.Scope(producer, tenant).Stream(), data).Run(ctx, b.rdb); err != nil {
			t.Fatal(err)
		}
		rpc.End()

		handlerSpan := make(chan trace.SpanContext, 1)
		startConsumer(t, b, b.rdb, fastConfig("T"), events.Subscription{Group: "reactor", Producer: producer,
			Handle: func(ctx context.Context, ev *eventv1.Event) error {
				handlerSpan <- trace.SpanContextFromContext(ctx)
				return nil
			}}, tel)
		var hs trace.SpanContext
		select {
		case hs = <-handlerSpan:
		case <-time.After(10 * time.Second):
			t.Fatal("event not handled")
		}
		eventually(t, 5*time.Second, "the consumer span ended", func() bool {
			for _, s := range spans.Ended() {
				if s.SpanContext().SpanID() == hs.SpanID() {
					return true
				}
			}
			return false
		})
		for _, s := range spans.Ended() {
			if s.SpanContext().SpanID() != hs.SpanID() {
				continue
			}
			if s.SpanKind() != trace.SpanKindConsumer || s.Name() != "process "+producer+".thing.happened" {
				t.Fatalf("handler span is %v %q", s.SpanKind(), s.Name())
			}
			if s.Parent().SpanID() != rpc.SpanContext().SpanID() || s.SpanContext().TraceID() != rpc.SpanContext().TraceID() {
				t.Fatalf("consumer span's parent is %v in trace %v, want the producer RPC span %v", s.Parent(),
					s.SpanContext().TraceID(), rpc.SpanContext())
			}
			links := s.Links()
			if len(links) != 1 || links[0].SpanContext.SpanID() != rpc.SpanContext().SpanID() ||
				links[0].SpanContext.TraceID() != rpc.SpanContext().TraceID() {
				t.Fatalf("consumer span links %v, want the producer RPC span %v", links, rpc.SpanContext())
			}
			attrs := map[string]string{}
			for _, kv := range s.Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			if attrs["messaging.system"] != "redis" || attrs["messaging.delivery.attempt"] != "1" ||
				attrs["messaging.message.id"] == "" || attrs["messaging.redis.entry_id"] == "" ||
				attrs["messaging.consumer.group.name"] == "" || !strings.HasSuffix(attrs["messaging.destination.name"], ":events") {
				t.Fatalf("consumer span attributes %v", attrs)
			}
		}
	})
}

// TestIdleWorkMakesNoSpans: a consumer polling empty streams, renewing and balancing its leases,
// over a Redis client traced as a process's is, records no span at all.
func TestIdleWorkMakesNoSpans(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tel := telemetry.ForTest(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), metricnoop.NewMeterProvider())
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL()}, tel.TracerProvider, tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	commands := &redistest.Commands{}
	rdb.AddHook(commands)
	sent := 0
	keys, err := keyspace.Open(context.Background(), rdb, partitions)
	if err != nil {
		t.Fatal(err)
	}
	stop := startConsumer(t, backend{rdb: rdb, keys: keys}, rdb, fastConfig("idle"), events.Subscription{
		Group: "idle", Producer: producerName(),
		Handle: func(context.Context, *eventv1.Event) error { return nil }}, tel)
	// Several lease terms (400 ms) of polls and renewals.
	eventually(t, 10*time.Second, "the consumer polled and renewed its leases", func() bool {
		sent += len(commands.Take())
		return sent > 200
	})
	stop()
	if ended := spans.Ended(); len(ended) != 0 {
		t.Fatalf("idle work made %d spans, e.g. %q; want none", len(ended), ended[0].Name())
	}
}

// TestReactionsEventNamesItsCause follows a cause through the bus: a call's event carries its key
// and request id; the event a reaction to it publishes names that event as its actor and keeps the
// request id, without the handler saying so.
func TestReactionsEventNamesItsCause(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		producer, tenant := producerName(), redistest.Tenant(t)
		call := events.WithCause(context.Background(), events.ByKey("key-1", "req-1", "/crm.test.v1.TestService/Write"))
		first := publish(call, t, b, producer, tenant, 1)
		if first.GetActor().GetApiKeyId() != "key-1" || first.GetRequestId() != "req-1" || first.GetMethod() != "/crm.test.v1.TestService/Write" {
			t.Fatalf("the call's event: actor %v, request id %q; want key-1, req-1", first.GetActor(), first.GetRequestId())
		}
		reacted := make(chan *eventv1.Event, 1)
		startConsumer(t, b, b.rdb, fastConfig("T"), events.Subscription{Group: "reactor", Producer: producer,
			Handle: func(ctx context.Context, ev *eventv1.Event) error {
				pub := events.Publisher{Producer: "reactor", Propagator: propagation.TraceContext{}}
				out, _, err := pub.Envelope(ctx, eventv1.Type[*wrapperspb.Int64Value]{Name: "reactor.thing.followed"}.Of(wrapperspb.Int64(2)), tenant, "", time.Now())
				reacted <- out
				return err
			}}, testTelemetry())
		select {
		case out := <-reacted:
			if out.GetActor().GetEventId() != first.GetId() || out.GetRequestId() != "req-1" || out.GetMethod() != "" {
				t.Errorf("the reaction's event: actor %v, request id %q; want event %s, req-1", out.GetActor(), out.GetRequestId(), first.GetId())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("event not handled")
		}
	})
}

// A steady consumer costs Redis little per event: one XACK per batch read, not one per entry;
// XPENDING only when it takes a partition over, not before every read; and its leases renewed a
// few times per TTL, not on every read. Every event is still applied exactly once.
func TestSteadyConsumerAcksInBatchesAndPollsLittle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		const total, batch = 100, 10
		for i := range total {
			publish(ctx, t, b, producer, tenant, i)
		}
		counted := b.newClient(t)
		counter := &redistest.Commands{}
		counted.AddHook(counter)
		started := time.Now()
		cfg := events.ConsumerConfig{Name: "steady", Batch: batch, Block: 50 * time.Millisecond,
			ClaimIdle: time.Minute, LeaseTTL: 4 * time.Second, MaxDeliveries: 3}
		stop := startConsumer(t, b, counted, cfg, events.Subscription{Group: group, Producer: producer,
			Handle: effect(b.rdb, b.keys, group)}, testTelemetry())
		eventually(t, 20*time.Second, "every event applied and acknowledged", func() bool {
			return len(effects(t, b, group, tenant)) == total && pendingCount(t, b, producer, group) == 0
		})
		// Let the partitions' readers poll a while longer: idle reads must not cost more either.
		reads := counter.Count("xreadgroup")
		eventually(t, 10*time.Second, "idle reads", func() bool { return counter.Count("xreadgroup") >= reads+4*partitions })
		xacks, xpendings, scripts := counter.Count("xack"), counter.Count("xpending"), counter.Count("evalsha")+counter.Count("eval")
		// Each partition's lease: taken once (EVALSHA, and EVAL if the script was not loaded yet),
		// then renewed once per quarter TTL.
		leaseRuns := partitions * (2 + int(time.Since(started)/(cfg.LeaseTTL/4)))
		stop()
		for id, n := range effects(t, b, group, tenant) {
			if n != "1" {
				t.Errorf("event %s applied %s times, want once", id, n)
			}
		}
		if got, most := xacks, total/batch+1; got > most {
			t.Errorf("XACK sent %d times for %d events read %d at a time, want at most %d", got, total, batch, most)
		}
		if got, most := xpendings, 2*partitions; got > most {
			t.Errorf("XPENDING sent %d times over %d reads, want at most %d (once per partition taken)",
				got, counter.Count("xreadgroup"), most)
		}
		if got, most := scripts, leaseRuns; got > most {
			t.Errorf("lease scripts run %d times over %d reads, want at most %d", got, counter.Count("xreadgroup"), most)
		}
	})
}
