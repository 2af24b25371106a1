package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// TestASubscriptionsOtherTypesAreAcknowledgedUnhandled: a subscription to some of its producer's
// types (as Subscribe makes from routes) gets exactly those, in stream order; the entries of the
// other types are acknowledged without a handler call or a span, and an entry that is not an
// event at all is still dead-lettered.
func TestASubscriptionsOtherTypesAreAcknowledgedUnhandled(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		wanted := eventv1.Type[*wrapperspb.Int64Value]{Name: producer + ".thing.wanted"}
		other := eventv1.Type[*wrapperspb.Int64Value]{Name: producer + ".thing.other"}
		pub := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}
		stream := b.keys.Scope(producer, tenant).Stream()
		var want []int64
		for i := range 30 {
			typ := other
			if i%3 == 0 {
				typ = wanted
				want = append(want, int64(i))
			}
			_, data, err := pub.Envelope(ctx, typ.Of(wrapperspb.Int64(int64(i))), tenant, "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := commit.New().Append(stream, data).Run(ctx, b.rdb); err != nil {
				t.Fatal(err)
			}
		}
		if err := commit.New().Append(stream, []byte("\xff not an event")).Run(ctx, b.rdb); err != nil {
			t.Fatal(err)
		}

		var (
			mu  sync.Mutex
			got []int64
		)
		subs := events.Subscribe(group, events.On(wanted, func(_ context.Context, _ *eventv1.Event, p *wrapperspb.Int64Value) error {
			mu.Lock()
			got = append(got, p.GetValue())
			mu.Unlock()
			return nil
		}))
		if len(subs) != 1 || !slices.Equal(subs[0].Types, []string{wanted.Name}) {
			t.Fatalf("Subscribe: got %+v, want one subscription to %s", subs, wanted.Name)
		}
		spans := tracetest.NewSpanRecorder()
		tel := telemetry.ForTest(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), metricnoop.NewMeterProvider())
		startConsumer(t, b, b.rdb, fastConfig("typed"), subs[0], tel)
		dlq := stream + ":dlq:" + group
		eventually(t, 20*time.Second, "every entry acknowledged, the broken one dead-lettered", func() bool {
			n, _ := b.rdb.XLen(ctx, dlq).Result()
			mu.Lock()
			defer mu.Unlock()
			return len(got) == len(want) && n == 1 && pendingCount(t, b, producer, group) == 0
		})
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("handled %v, want %v in stream order", got, want)
		}
		lag, err := events.Lag(ctx, b.rdb, b.keys, producer)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range lag {
			if g.Group == group && (g.Pending != 0 || g.Lag != 0) {
				t.Errorf("partition left %d pending, %d unread", g.Pending, g.Lag)
			}
		}
		for _, s := range spans.Ended() {
			if s.Name() != "process "+wanted.Name {
				t.Errorf("span %q: want spans only for %s", s.Name(), wanted.Name)
			}
		}
		if n := len(spans.Ended()); n != len(want) {
			t.Errorf("%d spans, want %d (one per handled event)", n, len(want))
		}
	})
}
