package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// limited is one API key's interceptor over a fresh key at rate/s with burst.
type limited struct {
	intercept grpc.UnaryServerInterceptor
	ctx       context.Context
	pass      *ratelimit.Pass
	principal auth.Principal
}

func newLimited(t *testing.T, rdb redis.UniversalClient, rate, burst int) *limited {
	t.Helper()
	return newLimitedMeasured(t, rdb, rate, burst, noop.NewMeterProvider())
}

func newLimitedMeasured(t *testing.T, rdb redis.UniversalClient, rate, burst int, mp metric.MeterProvider) *limited {
	t.Helper()
	pass, err := ratelimit.LoadPass(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{TenantID: redistest.Tenant(t), KeyID: "k1"}
	limiter := ratelimit.New(rdb, ratelimit.Config{PerSecond: rate, Burst: burst}, pass, mp, discard)
	return &limited{intercept: limiter.UnaryServerInterceptor(), ctx: auth.WithPrincipal(context.Background(), p), pass: pass, principal: p}
}

func (l *limited) call(ctx context.Context) error {
	_, err := l.intercept(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, func(context.Context, any) (any, error) { return "ok", nil })
	return err
}

func TestLimitHoldsWithFewRoundTrips(t *testing.T) {
	rdb := redistest.Client(t)
	hook := &redistest.Commands{}
	rdb.AddHook(hook)
	const rate, burst, calls = 100, 100, 150
	l := newLimited(t, rdb, rate, burst)
	hook.Take()

	start := time.Now()
	allowed := 0
	for range calls {
		if l.call(l.ctx) == nil {
			allowed++
		}
	}
	elapsed := time.Since(start)
	// Never more than the burst plus what refilled meanwhile (and one batch of a tenth of a second).
	if most := burst + int(elapsed.Seconds()*rate) + rate/10; allowed > most || allowed < burst {
		t.Fatalf("allowed %d of %d calls in %v, want between %d and %d", allowed, calls, elapsed, burst, most)
	}
	// Tokens come in batches of a tenth of a second's worth, and a key that ran dry waits for a
	// whole batch to refill: about two round trips per batch, never one per call.
	if cmds, most := len(hook.Take()), 2*calls/(rate/10)+4; cmds > most {
		t.Fatalf("%d Redis commands for %d calls (%d allowed, %v), want at most %d", cmds, calls, allowed, elapsed, most)
	}
}

// clients runs n clients that together call at perSecond for d, all starting at once, and counts
// the calls allowed and refused.
func clients(l *limited, n int, perSecond float64, d time.Duration) (allowed, refused int64, elapsed time.Duration) {
	interval := time.Duration(float64(n) / perSecond * float64(time.Second))
	var ok, no atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			// Each client paces itself on its own schedule; client i starts i/n of an interval late
			// after the first call, which all make at once.
			for k := 0; ; k++ {
				at := start.Add(time.Duration(k)*interval + time.Duration(i)*interval/time.Duration(n)*time.Duration(min(k, 1)))
				if at.Sub(start) >= d {
					return
				}
				time.Sleep(time.Until(at)) // pacing the load, not synchronization
				if l.call(l.ctx) == nil {
					ok.Add(1)
				} else {
					no.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load(), no.Load(), time.Since(start)
}

// TestCallersUnderTheLimitAreNeverRefused: 16 clients at half the limit, starting together (more
// than the burst at the same moment), are all admitted.
func TestCallersUnderTheLimitAreNeverRefused(t *testing.T) {
	l := newLimited(t, redistest.Client(t), 100, 10)
	allowed, refused, _ := clients(l, 16, 50, 1500*time.Millisecond)
	if refused != 0 || allowed < 60 {
		t.Fatalf("%d refused, %d allowed: want none refused of about 75", refused, allowed)
	}
}

// TestAdmissionAtTwiceTheLimit: offered twice the limit, a key is admitted at the limit (plus its
// burst), within 10 %.
func TestAdmissionAtTwiceTheLimit(t *testing.T) {
	const rate, burst = 100, 10
	reader := sdkmetric.NewManualReader()
	l := newLimitedMeasured(t, redistest.Client(t), rate, burst, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	allowed, refused, elapsed := clients(l, 8, 2*rate, 2*time.Second)
	want := float64(burst) + rate*elapsed.Seconds()
	if float64(allowed) < 0.9*want || float64(allowed) > 1.1*want || refused == 0 {
		t.Fatalf("allowed %d, refused %d in %v: want %.0f ± 10 %% allowed", allowed, refused, elapsed, want)
	}
	// Every refusal is counted.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "crm.ratelimit.refusals" {
				for _, dp := range sum.DataPoints {
					counted += dp.Value
				}
			}
		}
	}
	if counted != refused {
		t.Fatalf("crm.ratelimit.refusals = %d, want the %d refusals", counted, refused)
	}
}

// TestPassSkipsTheCharge: a call marked by another service for the same key is not charged; a
// forged mark, or one made for another key or for no client, is.
func TestPassSkipsTheCharge(t *testing.T) {
	rdb := redistest.Client(t)
	l := newLimited(t, rdb, 1, 1)
	if err := l.call(l.ctx); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if err := l.call(l.ctx); err == nil {
		t.Fatal("second call at 1/s with burst 1 was admitted")
	}
	marked := func(stamped context.Context) context.Context {
		md, _ := metadata.FromOutgoingContext(stamped)
		return metadata.NewIncomingContext(l.ctx, md)
	}
	if err := l.call(marked(l.pass.Stamp(l.ctx))); err != nil {
		t.Fatalf("a call marked by a service that admitted the client: %v", err)
	}
	other := auth.WithPrincipal(context.Background(), auth.Principal{TenantID: l.principal.TenantID, KeyID: "k2"})
	for name, ctx := range map[string]context.Context{
		"forged":         metadata.NewIncomingContext(l.ctx, metadata.Pairs(ratelimit.PassHeader, "99999999999.bm90LWEtbWFj")),
		"another key's":  marked(l.pass.Stamp(other)),
		"from no client": marked(l.pass.Stamp(context.Background())),
	} {
		if err := l.call(ctx); err == nil {
			t.Errorf("a call with a %s mark was admitted over the limit", name)
		}
	}
}

// TestAStalledRedisDoesNotHoldTheCall: a Redis that holds the limiter's write without failing it
// (CLIENT PAUSE WRITE, as during a failover) does not hold the call until the I/O timeout; the call
// passes (the limiter protects, it does not gate) while the refill waits, and once Redis answers,
// the refill lands and calls are charged again.
func TestAStalledRedisDoesNotHoldTheCall(t *testing.T) {
	srv := redistest.NewServer(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout = time.Minute // the stall outlasts the call: only the limiter's own bound ends its wait
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	l := newLimited(t, rdb, 1, 1)
	bucket := "rate:crm:ratelimit:" + l.principal.TenantID + ":" + l.principal.KeyID // redis_rate prefixes "rate:"
	admin := srv.Client(t)
	if err := admin.Do(context.Background(), "client", "pause", "60000", "write").Err(); err != nil {
		t.Fatal(err)
	}
	paused := true
	unpause := func() {
		if paused {
			paused = false
			if err := admin.Do(context.Background(), "client", "unpause").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(unpause)

	if err := l.call(l.ctx); err != nil {
		t.Fatalf("a call while Redis holds writes: %v, want it to pass", err)
	}
	// It passed before Redis ran the refill: the bucket is not written yet (a read, which a write
	// pause lets through).
	if n, err := admin.Exists(context.Background(), bucket).Result(); err != nil || n != 0 {
		t.Fatalf("bucket exists = %d, %v: the call waited for Redis", n, err)
	}
	unpause()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := admin.Exists(context.Background(), bucket).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refill never landed once Redis answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The refill took the burst's one token: the next calls of a key at 1/s are refused.
	refused := 0
	for range 3 {
		if err := l.call(l.ctx); err != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("calls at once over the limit after Redis came back: none refused")
	}
}
