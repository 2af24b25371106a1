// Command busbench measures the event bus of DESIGN.md §6 against the target of §10: event lag
// from commit to reaction p99 under 100 ms at 1,000 events/s. bench/run.sh runs it against a
// redis-server of its own; see bench/README.md.
//
//	busbench --redis-url redis://127.0.0.1:PORT --partitions 16 --duration 10s --rate 1000
//
// It publishes the way a service does (the envelope appended to the producer's partition stream
// with commit.Append) and consumes with events.NewConsumer, the runner `crm serve` uses, with the
// production ConsumerConfig (only Name set), a separate connection pool for the consumer as crm
// has, and a handler that makes a real exactly-once effect (a Once marker and a counter in one
// atomic write). Three phases:
//
//  1. throughput: --events events are published up front (--publishers goroutines, tenants on
//     every partition), then one consumer drains them: once with the exactly-once effect, once
//     with a no-op handler (another consumer group on the same streams), in events/s;
//  2. lag: with a consumer running, events are published at --rate for --duration, paced by a
//     ticker; the handler takes handler time − the envelope's occurred_time (stamped right before
//     the commit), and reports p50/p95/p99/max;
//  3. optionally (--tuned-block) phase 2 again with a shorter ConsumerConfig.Block.
//
// Output: "name value" lines on stdout, for bench/report.py. It exits non-zero on an error or
// when an event is lost or applied twice (the effect counters must sum to the published count,
// tenant by tenant), never on a missed target.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

type options struct {
	url          string
	partitions   int
	duration     time.Duration
	rate         int
	events       int
	publishers   int
	tenantsPer   int
	tunedBlock   time.Duration
	drainTimeout time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "redis-url", "", "Redis URL (a redis-server of the benchmark's own: the run leaves its streams there)")
	flag.IntVar(&o.partitions, "partitions", 16, "hash-tag partitions (keyspace.Open records it in a fresh Redis)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long the fixed-rate lag phase publishes")
	flag.IntVar(&o.rate, "rate", 1000, "events per second in the lag phase")
	flag.IntVar(&o.events, "events", 20000, "events published up front for the throughput phase (0 skips it)")
	flag.IntVar(&o.publishers, "publishers", 8, "publishing goroutines")
	flag.IntVar(&o.tenantsPer, "tenants-per-partition", 4, "tenants per partition")
	flag.DurationVar(&o.tunedBlock, "tuned-block", 0, "also run the lag phase with this ConsumerConfig.Block (0: only the defaults)")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "how long to wait for the consumer to catch up before calling events lost")
	flag.Parse()
	if o.url == "" || o.partitions < 1 || o.rate < 1 || o.duration <= 0 || o.publishers < 1 || o.tenantsPer < 1 {
		fmt.Fprintln(os.Stderr, "busbench: --redis-url is required; --partitions, --rate, --duration, --publishers must be positive")
		os.Exit(2)
	}
	ctx := context.Background()
	b, err := setup(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "busbench:", err)
		os.Exit(1)
	}
	defer b.close()
	b.run(ctx)
	if len(b.problems) > 0 {
		for _, p := range b.problems {
			fmt.Fprintln(os.Stderr, "busbench: ERROR:", p)
			fmt.Printf("bus_error %s\n", strings.ReplaceAll(p, "\n", " "))
		}
		os.Exit(1)
	}
}

type bench struct {
	o       options
	rdb     redis.UniversalClient // the service's client: publishing and handler effects
	busRdb  redis.UniversalClient // the consumer's own pool, as crm gives it
	keys    *keyspace.Space
	tel     *telemetry.Telemetry
	logger  *slog.Logger
	tenants []string
	id      string // a per-run suffix, so the streams and tenants of a run are its own

	problems []string
}

func setup(ctx context.Context, o options) (*bench, error) {
	tel := telemetry.ForTest(tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
	rdb, err := redisconn.Open(ctx, redisconn.Config{URL: o.url}, tel.TracerProvider, tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	// crm: "Blocking stream reads hold a connection each: give them their own pool".
	busRdb, err := redisconn.Open(ctx, redisconn.Config{URL: o.url, PoolSize: o.partitions + 8}, tel.TracerProvider, tel.MeterProvider)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	keys, err := keyspace.Open(ctx, rdb, o.partitions)
	if err != nil {
		_ = rdb.Close()
		_ = busRdb.Close()
		return nil, err
	}
	b := &bench{
		o: o, rdb: rdb, busRdb: busRdb, keys: keys, tel: tel,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		id:     strings.ReplaceAll(uuid.NewString()[:8], "-", ""),
	}
	// tenantsPer tenants on every partition, so every partition stream carries the same traffic.
	per := map[int]int{}
	for i := 0; len(b.tenants) < o.tenantsPer*o.partitions; i++ {
		t := fmt.Sprintf("bench-%s-t%d", b.id, i)
		if p := keys.Partition(t); per[p] < o.tenantsPer {
			per[p]++
			b.tenants = append(b.tenants, t)
		}
	}
	return b, nil
}

func (b *bench) close() {
	_ = b.busRdb.Close()
	_ = b.rdb.Close()
}

func (b *bench) fail(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

func out(name string, format string, v ...any) {
	fmt.Printf("%s %s\n", name, fmt.Sprintf(format, v...))
}

func (b *bench) run(ctx context.Context) {
	out("bus_partitions", "%d", b.o.partitions)
	out("bus_tenants", "%d", len(b.tenants))
	out("bus_publishers", "%d", b.o.publishers)
	if b.o.events > 0 {
		b.throughput(ctx)
	}
	b.lag(ctx, "bus_lag", events.ConsumerConfig{Name: "busbench-lag"})
	if b.o.tunedBlock > 0 {
		out("bus_tuned_block_ms", "%g", float64(b.o.tunedBlock)/float64(time.Millisecond))
		b.lag(ctx, "bus_lag_tuned", events.ConsumerConfig{Name: "busbench-tuned", Block: b.o.tunedBlock})
	}
}

// ------------------------------------------------------------------------------------ publishing

// thingHappened is the bench's event type, declared as the services declare theirs.
var thingHappened = eventv1.Type[*wrapperspb.Int64Value]{Name: "bench.thing.happened"}

// publish commits one event for tenant as a service's write does, stamping occurred_time right
// before the commit; seq goes in the payload (negative: warm-up, not measured).
func (b *bench) publish(ctx context.Context, producer, tenant string, seq int64) error {
	pub := events.Publisher{Producer: producer, Propagator: b.tel.Propagator}
	_, data, err := pub.Envelope(ctx, thingHappened.Of(wrapperspb.Int64(seq)), tenant, "", time.Now())
	if err != nil {
		return err
	}
	return commit.New().Append(b.keys.Scope(producer, tenant).Stream(), data).Run(ctx, b.rdb)
}

// ------------------------------------------------------------------------------------- consuming

// effect is the exactly-once reaction: a seen marker and a counter per tenant in one atomic write.
func (b *bench) effect(ctx context.Context, group string, ev *eventv1.Event) error {
	scope := b.keys.Scope(group, ev.GetTenantId())
	return events.Guard(commit.New(), scope, events.EffectOf(ev, "count")).
		HIncrBy(scope.Key("n"), "events", 1).
		Run(ctx, b.rdb)
}

// counters are what a handler saw.
type counters struct {
	handled, already, failed atomic.Int64
}

// startConsumer runs a consumer of sub until the returned stop is called.
func (b *bench) startConsumer(cfg events.ConsumerConfig, sub events.Subscription) (stop func() error, err error) {
	c, err := events.NewConsumer(cfg, sub, b.busRdb, b.keys, b.tel, b.logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error { cancel(); return <-done }, nil
}

// waitFor polls cond every 2 ms until it holds (true) or timeout passes (false).
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// settled reports whether the group has nothing pending, nothing undelivered, no dead letters.
func (b *bench) settled(ctx context.Context, producer, group string) (pending, lag, dead int64, err error) {
	all, err := events.Lag(ctx, b.rdb, b.keys, producer)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, g := range all {
		if g.Group == group {
			pending += g.Pending
			lag += max(g.Lag, 0)
			dead += g.DeadLetters
		}
	}
	return pending, lag, dead, nil
}

// checkExactlyOnce compares the effect counters of group, tenant by tenant, with what was published.
func (b *bench) checkExactlyOnce(ctx context.Context, phase, group string, want map[string]int64) (applied int64) {
	var wantTotal int64
	pipe := b.rdb.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for t := range want {
		cmds[t] = pipe.HGet(ctx, b.keys.Scope(group, t).Key("n"), "events")
		wantTotal += want[t]
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		b.fail("%s: read the effect counters: %v", phase, err)
		return -1
	}
	var bad []string
	for t, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			b.fail("%s: effect counter of %s: %v", phase, t, err)
			return -1
		}
		applied += n
		if n != want[t] {
			bad = append(bad, fmt.Sprintf("%s %d/%d", t, n, want[t]))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		b.fail("%s: effects applied %d times for %d published events (not exactly once); tenants applied/published: %s",
			phase, applied, wantTotal, strings.Join(bad[:min(len(bad), 5)], ", "))
	}
	return applied
}

// ------------------------------------------------------------------------------------ throughput

func (b *bench) throughput(ctx context.Context) {
	producer := "bbt" + b.id
	n := b.o.events
	want := map[string]int64{}
	for i := range n {
		want[b.tenants[i%len(b.tenants)]]++
	}

	// Publish the backlog with several goroutines.
	var next atomic.Int64
	var perr atomic.Value
	var wg sync.WaitGroup
	s0 := sample(ctx, b.rdb)
	for range b.o.publishers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := b.publish(ctx, producer, b.tenants[int(i)%len(b.tenants)], i); err != nil {
					perr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	s1 := sample(ctx, b.rdb)
	if err, _ := perr.Load().(error); err != nil {
		b.fail("throughput: publish: %v", err)
		return
	}
	out("bus_throughput_events", "%d", n)
	report("bus_publish", n, s0, s1)

	// Drain it with one consumer: the exactly-once effect, then a no-op handler (another group).
	for _, kind := range []string{"effect", "noop"} {
		group := "bench-" + kind
		var c counters
		handle := func(ctx context.Context, ev *eventv1.Event) error {
			if kind == "noop" {
				c.handled.Add(1)
				return nil
			}
			err := b.effect(ctx, group, ev)
			switch {
			case err == nil:
				c.handled.Add(1)
			case errors.Is(err, commit.ErrAlreadyApplied):
				c.already.Add(1)
			default:
				c.failed.Add(1)
			}
			return err
		}
		s0 := sample(ctx, b.rdb)
		stop, err := b.startConsumer(events.ConsumerConfig{Name: "busbench-" + kind},
			events.Subscription{Group: group, Producer: producer, Handle: handle})
		if err != nil {
			b.fail("throughput %s: %v", kind, err)
			return
		}
		ok := waitFor(b.o.drainTimeout, func() bool { return c.handled.Load()+c.already.Load() >= int64(n) })
		s1 := sample(ctx, b.rdb)
		// The last acknowledgements follow the last handler calls at once.
		waitFor(5*time.Second, func() bool {
			p, l, _, err := b.settled(ctx, producer, group)
			return err == nil && p == 0 && l == 0
		})
		if err := stop(); err != nil {
			b.fail("throughput %s: consumer: %v", kind, err)
		}
		name := "bus_throughput_" + kind
		report(name, n, s0, s1)
		out(name+"_redeliveries", "%d", c.already.Load())
		out(name+"_handler_errors", "%d", c.failed.Load())
		if !ok {
			b.fail("throughput %s: %d of %d events handled within %s", kind, c.handled.Load(), n, b.o.drainTimeout)
		}
		if c.failed.Load() > 0 {
			b.fail("throughput %s: %d handler errors", kind, c.failed.Load())
		}
		if p, l, d, err := b.settled(ctx, producer, group); err != nil || p != 0 || l != 0 || d != 0 {
			b.fail("throughput %s: after the run %d pending, %d undelivered, %d dead letters (%v)", kind, p, l, d, err)
		}
		if kind == "effect" {
			out(name+"_applied", "%d", b.checkExactlyOnce(ctx, "throughput effect", group, want))
		} else if c.handled.Load() != int64(n) {
			b.fail("throughput noop: handled %d events, published %d", c.handled.Load(), n)
		}
	}
}

// ------------------------------------------------------------------------------------------- lag

func (b *bench) lag(ctx context.Context, name string, cfg events.ConsumerConfig) {
	producer := "bbl" + b.id + strings.TrimPrefix(name, "bus_lag")
	group := strings.ReplaceAll(name, "_", "-") // its own counters per phase
	total := int(math.Round(b.o.duration.Seconds() * float64(b.o.rate)))
	want := map[string]int64{}

	var mu sync.Mutex
	reaction := make([]time.Duration, 0, total) // occurred_time → effect committed
	delivery := make([]time.Duration, 0, total) // occurred_time → handler called
	var c counters
	handle := func(ctx context.Context, ev *eventv1.Event) error {
		in := time.Now()
		err := b.effect(ctx, group, ev)
		done := time.Now()
		switch {
		case err == nil:
			c.handled.Add(1)
		case errors.Is(err, commit.ErrAlreadyApplied):
			c.already.Add(1)
			return err
		default:
			c.failed.Add(1)
			return err
		}
		seq := &wrapperspb.Int64Value{}
		if ev.GetPayload().UnmarshalTo(seq) == nil && seq.GetValue() >= 0 {
			at := ev.GetOccurredTime().AsTime()
			mu.Lock()
			reaction = append(reaction, done.Sub(at))
			delivery = append(delivery, in.Sub(at))
			mu.Unlock()
		}
		return nil
	}
	stop, err := b.startConsumer(cfg, events.Subscription{Group: group, Producer: producer, Handle: handle})
	if err != nil {
		b.fail("%s: %v", name, err)
		return
	}
	defer func() {
		if err := stop(); err != nil {
			b.fail("%s: consumer: %v", name, err)
		}
	}()

	// Warm-up, not measured: one event per tenant, so every partition is held and read.
	for _, t := range b.tenants {
		if err := b.publish(ctx, producer, t, -1); err != nil {
			b.fail("%s: warm-up publish: %v", name, err)
			return
		}
		want[t]++
	}
	if !waitFor(30*time.Second, func() bool { return c.handled.Load() >= int64(len(b.tenants)) }) {
		b.fail("%s: warm-up: %d of %d events handled within 30s", name, c.handled.Load(), len(b.tenants))
		return
	}
	warm := int64(len(b.tenants))

	// The fixed rate: a ticker releases the events due so far to the publishing goroutines.
	for i := range total {
		want[b.tenants[i%len(b.tenants)]]++
	}
	jobs := make(chan int, total)
	var perr atomic.Value
	var wg sync.WaitGroup
	for range b.o.publishers {
		wg.Go(func() {
			for i := range jobs {
				if err := b.publish(ctx, producer, b.tenants[i%len(b.tenants)], int64(i)); err != nil {
					perr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	interval := max(time.Millisecond, time.Second/time.Duration(b.o.rate))
	s0 := sample(ctx, b.rdb)
	start := time.Now()
	tick := time.NewTicker(interval)
	sent := 0
	for sent < total {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(b.o.rate)))
		for ; sent < due; sent++ {
			jobs <- sent
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	pubSecs := time.Since(start).Seconds()
	caught := waitFor(b.o.drainTimeout, func() bool { return c.handled.Load()+c.already.Load() >= warm+int64(total) })
	s1 := sample(ctx, b.rdb)
	waitFor(5*time.Second, func() bool {
		p, l, _, err := b.settled(ctx, producer, group)
		return err == nil && p == 0 && l == 0
	})
	if err, _ := perr.Load().(error); err != nil {
		b.fail("%s: publish: %v", name, err)
	}

	out(name+"_rate", "%d", b.o.rate)
	out(name+"_published_eps", "%.0f", float64(total)/pubSecs)
	mu.Lock()
	r, d := slices.Clone(reaction), slices.Clone(delivery)
	mu.Unlock()
	out(name+"_count", "%d", len(r))
	slices.Sort(r)
	slices.Sort(d)
	for _, q := range []struct {
		label string
		p     float64
	}{{"p50", 50}, {"p95", 95}, {"p99", 99}, {"max", 100}} {
		out(name+"_"+q.label+"_ms", "%.2f", ms(pct(r, q.p)))
	}
	out(name+"_delivery_p50_ms", "%.2f", ms(pct(d, 50)))
	out(name+"_delivery_p99_ms", "%.2f", ms(pct(d, 99)))
	report(name, total, s0, s1)
	out(name+"_redeliveries", "%d", c.already.Load())
	out(name+"_handler_errors", "%d", c.failed.Load())
	if !caught {
		b.fail("%s: %d of %d events handled within %s of the end", name, c.handled.Load()-warm, total, b.o.drainTimeout)
	}
	if c.failed.Load() > 0 {
		b.fail("%s: %d handler errors", name, c.failed.Load())
	}
	if len(r) != total {
		b.fail("%s: %d latencies recorded for %d events published", name, len(r), total)
	}
	if p, l, dl, err := b.settled(ctx, producer, group); err != nil || p != 0 || l != 0 || dl != 0 {
		b.fail("%s: after the run %d pending, %d undelivered, %d dead letters (%v)", name, p, l, dl, err)
	}
	out(name+"_applied", "%d", b.checkExactlyOnce(ctx, name, group, want)-warm)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// -------------------------------------------------------------------------------------- CPU time

// snapshot is the CPU time so far of this process, of redis-server (INFO cpu) and of the machine.
type snapshot struct {
	wall                 time.Time
	self, redis, machine float64          // seconds; negative: unknown
	calls                map[string]int64 // INFO commandstats: calls per command, script-run ones included
}

func sample(ctx context.Context, rdb redis.UniversalClient) snapshot {
	s := snapshot{wall: time.Now(), self: -1, redis: -1, machine: -1}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	if info, err := rdb.Info(ctx, "cpu").Result(); err == nil {
		var sum float64
		var found int
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
				found++
			}
		}
		if found == 2 {
			s.redis = sum
		}
	}
	if info, err := rdb.Info(ctx, "commandstats").Result(); err == nil {
		s.calls = map[string]int64{}
		for _, line := range strings.Split(info, "\n") {
			// cmdstat_xack:calls=12,usec=...
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok || !strings.HasPrefix(k, "cmdstat_") {
				continue
			}
			v, _, _ = strings.Cut(v, ",")
			s.calls[strings.TrimPrefix(k, "cmdstat_")], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if f, err := os.Open("/proc/stat"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			// cpu user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
			fields := strings.Fields(sc.Text())
			if len(fields) > 8 && fields[0] == "cpu" {
				var busy float64
				for _, i := range []int{1, 2, 3, 6, 7, 8} {
					v, _ := strconv.ParseFloat(fields[i], 64)
					busy += v
				}
				s.machine = busy / clkTck
			}
		}
		_ = f.Close()
	}
	return s
}

// clkTck is USER_HZ, 100 on every Linux architecture Go supports.
const clkTck = 100

// report prints the rate of a phase and the CPU per event of this process (publishers and
// consumer) and of Redis, and the share of the machine other work took.
func report(name string, n int, s0, s1 snapshot) {
	secs := s1.wall.Sub(s0.wall).Seconds()
	out(name+"_seconds", "%.3f", secs)
	out(name+"_eps", "%.0f", float64(n)/secs)
	if s0.self >= 0 && s1.self >= 0 {
		out(name+"_client_cpu_us", "%.1f", (s1.self-s0.self)*1e6/float64(n))
	}
	if s0.redis >= 0 && s1.redis >= 0 {
		out(name+"_redis_cpu_us", "%.1f", (s1.redis-s0.redis)*1e6/float64(n))
	}
	if s0.calls != nil && s1.calls != nil {
		// The sampling's own INFO calls are left out.
		type kv struct {
			cmd string
			n   int64
		}
		var diff []kv
		var total int64
		for cmd, n := range s1.calls {
			if d := n - s0.calls[cmd]; d > 0 && cmd != "info" {
				diff = append(diff, kv{cmd, d})
				total += d
			}
		}
		slices.SortFunc(diff, func(a, b kv) int { return int(b.n - a.n) })
		parts := make([]string, 0, len(diff))
		for _, d := range diff {
			if per := float64(d.n) / float64(n); per >= 0.01 {
				parts = append(parts, fmt.Sprintf("%s %.2f", d.cmd, per))
			}
		}
		out(name+"_redis_calls_per_event", "%.2f", float64(total)/float64(n))
		out(name+"_redis_calls", "%s", strings.Join(parts, ", "))
	}
	if s0.machine >= 0 && s1.machine >= 0 && s0.self >= 0 && s0.redis >= 0 {
		cpus := float64(runtime.NumCPU())
		busy := (s1.self - s0.self) + (s1.redis - s0.redis)
		other := max(0, (s1.machine-s0.machine)-busy)
		out(name+"_busy_pct", "%.0f", 100*busy/(secs*cpus))
		out(name+"_other_pct", "%.0f", 100*other/(secs*cpus))
	}
}
