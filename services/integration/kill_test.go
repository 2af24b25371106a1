package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// instance is one integration process's event recorder and webhook dispatcher.
type instance struct {
	endpoints *integration.Endpoints
	stop      context.CancelFunc
	done      *errgroup.Group
}

func startInstance(t *testing.T, suite *servicetest.Suite, cfg integration.DispatchConfig) *instance {
	t.Helper()
	return startInstanceWith(t, suite, cfg, nil)
}

// startInstanceWith starts an instance whose webhook metrics go to mp.
func startInstanceWith(t *testing.T, suite *servicetest.Suite, cfg integration.DispatchConfig, mp metric.MeterProvider) *instance {
	t.Helper()
	d := suite.Deps
	store := redisstore.New(d.Redis, d.Keys)
	pub := events.Publisher{Producer: "integration", Propagator: d.Telemetry.Propagator}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	endpoints := integration.NewEndpoints(store, pub, v, cfg.AllowPrivate, time.Now)
	dispatcher := integration.NewDispatcher(cfg, store, endpoints, quiet, time.Now, mp)
	endpoints.Attach(dispatcher)
	recorder := integration.NewRecorder(store, integration.NewSettings(store, pub, time.Now), dispatcher, time.Now)
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 8*servicetest.Partitions*len(integration.Producers) + 8 // a blocking read per stream
	bus := redis.NewClient(opts)
	t.Cleanup(func() { _ = bus.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return dispatcher.Run(ctx) })
	for _, sub := range recorder.Subscriptions() {
		c, err := events.NewConsumer(events.ConsumerConfig{Block: 100 * time.Millisecond, ClaimIdle: time.Second, LeaseTTL: 2 * time.Second}, sub, bus, d.Keys, d.Telemetry, quiet)
		if err != nil {
			t.Fatal(err)
		}
		g.Go(func() error { return c.Run(ctx) })
	}
	in := &instance{endpoints: endpoints, stop: cancel, done: &g}
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	return in
}

// TestKilledSenderLosesNoDelivery stops an integration instance while its attempts are in flight
// (their requests are cut, their claims left in the due queue) and starts another: every event is
// delivered at least once, and the receiver, deduping on webhook-id, sees each exactly once. The
// stop is in-process: the first instance's context is cancelled, which abandons its attempts as a
// kill would; the multi-process suite in cmd/crm runs the processes themselves. The events are
// one customer's, so they also arrive in order across the stop: a sequence number may come again
// (the attempt cut by the stop), never after a later one.
func TestKilledSenderLosesNoDelivery(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{})
	tenant := redistest.Tenant(t)
	cfg := integration.DispatchConfig{Timeout: 300 * time.Millisecond, Backoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, Poll: 50 * time.Millisecond, AllowPrivate: true}

	var mu sync.Mutex
	seen := map[string]int{} // webhook-id → requests
	events200 := map[string]bool{}
	var order []int64 // the sequence number of every request, in arrival
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // slow enough that a stop catches attempts in flight
		body, _ := io.ReadAll(r.Body)
		var msg struct{ Sequence int64 }
		_ = json.Unmarshal(body, &msg)
		mu.Lock()
		order = append(order, msg.Sequence)
		seen[r.Header.Get("webhook-id")]++
		events200[string(body)] = true
		mu.Unlock()
	}))
	t.Cleanup(rc.Close)

	first := startInstance(t, suite, cfg)
	if _, err := first.endpoints.Create(context.Background(), admin(tenant), &integrationv1.WebhookEndpoint{Url: rc.URL, EventTypes: []string{"sales.*"}}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	pub := events.Publisher{Producer: "sales", Propagator: suite.Telemetry.Propagator}
	typ := eventv1.Type[*wrapperspb.Int64Value]{Name: "sales.thing.happened"}
	for i := range n {
		_, data, err := pub.Envelope(context.Background(), typ.Of(wrapperspb.Int64(int64(i))), tenant, "c-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := commit.New().Append(suite.Deps.Keys.Scope("sales", tenant).Stream(), data).Run(context.Background(), suite.Redis); err != nil {
			t.Fatal(err)
		}
	}
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	deadline := time.Now().Add(30 * time.Second)
	for distinct() < n/4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d deliveries before the stop", distinct())
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.stop()
	_ = first.done.Wait()
	atStop := distinct()
	startInstance(t, suite, cfg)
	deadline = time.Now().Add(60 * time.Second)
	for distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries after the restart (%d before it)", distinct(), n, atStop)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n || len(events200) != n {
		t.Errorf("%d distinct webhook-ids and %d distinct bodies, want %d each", len(seen), len(events200), n)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("sequence %d arrived after %d: %v", order[i], order[i-1], order)
		}
	}
	again := 0
	for _, c := range seen {
		again += c - 1
	}
	t.Logf("stopped after %d deliveries; %d redelivered (at least once), %d in all", atStop, again, n)
}
