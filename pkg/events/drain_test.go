package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// TestShutdownDrainsTheEventInHand: stopping a consumer lets the handler call in flight finish and
// be acknowledged, and releases the leases so another consumer takes over without waiting.
func TestShutdownDrainsTheEventInHand(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		ev := publish(ctx, t, b, producer, tenant, 1)
		started, finish := make(chan struct{}), make(chan struct{})
		apply := effect(b.rdb, b.keys, group)
		cfg := fastConfig("draining")
		cfg.LeaseTTL = time.Hour // a takeover can only come from the release, not from expiry
		consumer, err := events.NewConsumer(cfg, events.Subscription{Group: group, Producer: producer,
			Handle: func(ctx context.Context, e *eventv1.Event) error {
				close(started)
				<-finish
				return apply(ctx, e)
			}}, b.rdb, b.keys, testTelemetry(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- consumer.Run(runCtx) }()
		<-started
		cancel() // shutdown begins while the handler is still at work
		close(finish)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := effects(t, b, group, tenant)[ev.GetId()]; got != "1" {
			t.Fatalf("the event in hand was applied %q times during shutdown, want once", got)
		}
		if n := pendingCount(t, b, producer, group); n != 0 {
			t.Fatalf("%d entries left pending after a graceful stop", n)
		}
		for p := range b.keys.Partitions() {
			if n, _ := b.rdb.Exists(ctx, b.keys.Lease(producer, p, group)).Result(); n != 0 {
				t.Fatalf("partition %d lease still held after a graceful stop", p)
			}
		}
	})
}

// TestStopWhileStartingIsNoError: a consumer stopped before it has started (a process shut down
// at once) returns nil, as any stop does, rather than the cancelled start-up call's error.
func TestStopWhileStartingIsNoError(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		consumer, err := events.NewConsumer(fastConfig("stopped"), events.Subscription{Group: "reactor", Producer: producerName(),
			Handle: func(context.Context, *eventv1.Event) error { return nil }}, b.rdb, b.keys, testTelemetry(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := consumer.Run(ctx); err != nil {
			t.Fatalf("Run with a stopped context = %v, want nil", err)
		}
	})
}

// TestConsumerMetrics checks the counters and gauges a consumer exports.
func TestConsumerMetrics(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		good := publish(ctx, t, b, producer, tenant, 1)
		publish(ctx, t, b, producer, tenant, 2) // fails: dead-lettered after 3 deliveries
		reader := sdkmetric.NewManualReader()
		tel := telemetry.ForTest(tracenoop.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
		apply := effect(b.rdb, b.keys, group)
		startConsumer(t, b, b.rdb, fastConfig("M"), events.Subscription{Group: group, Producer: producer,
			Handle: func(ctx context.Context, e *eventv1.Event) error {
				if e.GetId() != good.GetId() {
					// A refusal: a deadline (context.DeadlineExceeded) would be a store fault, retried
					// without counting (redisconn.Unavailable).
					return errors.New("refused")
				}
				return apply(ctx, e)
			}}, tel)
		eventually(t, 10*time.Second, "one event handled and one dead-lettered", func() bool {
			dead, _ := events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10)
			return len(dead) == 1 && len(effects(t, b, group, tenant)) == 1
		})
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch data := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range data.DataPoints {
						got[m.Name] += dp.Value
					}
				case metricdata.Gauge[int64]:
					for _, dp := range data.DataPoints {
						got[m.Name] += dp.Value
					}
				}
			}
		}
		want := map[string]int64{"crm.events.delivered": 1, "crm.events.failed": 3, "crm.events.dead_lettered": 1,
			"crm.events.dead_letters": 1, "crm.events.pending": 0, "crm.events.lag": 0}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s = %d, want %d (all: %v)", name, got[name], w, got)
			}
		}
	})
}
