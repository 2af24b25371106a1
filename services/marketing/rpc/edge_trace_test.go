package rpc_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestCaptureTraceReachesRedis follows a capture into Redis: the marketing server span and the
// span of its one atomic write share a trace, the write nested in the server span. The hops before
// the server (gateway > gRPC client > server) are tested in the gateway module.
func TestCaptureTraceReachesRedis(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write")
	client, ctx := sys.marketing(key)
	if _, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "trace@example.com"}}); err != nil {
		t.Fatalf("capture: %v", err)
	}

	find := func(spans []sdktrace.ReadOnlySpan, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		for _, s := range spans {
			if match(s) {
				return s
			}
		}
		return nil
	}
	isServer := func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindServer && s.Name() == "crm.marketing.v1.MarketingService/CaptureLead"
	}
	var server, redis sdktrace.ReadOnlySpan
	var spans []sdktrace.ReadOnlySpan
	// The server span ends just after the response is written: wait (bounded) until it ended.
	for deadline := time.Now().Add(5 * time.Second); ; {
		spans = sys.Suite.Spans.Ended()
		if server = find(spans, isServer); server != nil {
			traceID := server.SpanContext().TraceID()
			redis = find(spans, func(s sdktrace.ReadOnlySpan) bool {
				return s.SpanContext().TraceID() == traceID && s.SpanKind() == trace.SpanKindClient &&
					strings.HasPrefix(strings.ToLower(s.Name()), "eval")
			})
			if redis != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
			t.Fatalf("the trace lacks a span: marketing server %v, Redis %v; ended spans: %v", server != nil, redis != nil, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if redis.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Fatalf("spans do not nest marketing server > Redis")
	}
}

// TestConsumerSpanLinksToTheCapturingRPC follows a REST capture onto the bus: the handler of the
// marketing.lead.captured event runs in a consumer span, child of and linked to the marketing
// server span that wrote the event.
func TestConsumerSpanLinksToTheCapturingRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write")
	// The test's group starts at the streams' current end: the shared Redis holds the events of
	// every test before this one (tens of thousands under the long flag), which are not this test's
	// to wait for. The consumer then finds its group made.
	keys := sys.Suite.Deps.Keys
	for p := range keys.Partitions() {
		if err := redistest.Client(t).XGroupCreateMkStream(context.Background(), keys.Stream("marketing", p), "tracetest", "$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	captured := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"bus@example.com"}`))
	if captured.Status != http.StatusOK {
		t.Fatalf("capture: %d %s", captured.Status, captured.Body)
	}
	leadID := captured.JSON(t)["id"].(string)

	handled := make(chan trace.SpanContext, 1)
	// The consumer blocks on every partition's stream: a client of its own, as a process's bus has.
	consumer, err := events.NewConsumer(events.ConsumerConfig{Name: "trace-test", Block: 50 * time.Millisecond},
		events.Subscription{Group: "tracetest", Producer: "marketing", Handle: func(ctx context.Context, ev *eventv1.Event) error {
			payload := &marketingv1.LeadCaptured{}
			if err := ev.GetPayload().UnmarshalTo(payload); err != nil {
				return err
			}
			if payload.GetLeadId() == leadID {
				handled <- trace.SpanContextFromContext(ctx)
			}
			return nil
		}}, redistest.Client(t), sys.Suite.Deps.Keys, sys.Suite.Telemetry, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { cancel(); <-done }) }
	defer stop()

	var handler trace.SpanContext
	select {
	case handler = <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("the capture's event was not handled")
	}
	stop() // the consumer span ends before Run returns
	var server, process sdktrace.ReadOnlySpan
	for _, s := range sys.Suite.Spans.Ended() {
		if s.SpanKind() == trace.SpanKindServer && s.Name() == "crm.marketing.v1.MarketingService/CaptureLead" {
			server = s
		}
		if s.SpanContext().SpanID() == handler.SpanID() {
			process = s
		}
	}
	if server == nil || process == nil {
		t.Fatalf("missing spans: CaptureLead server %v, handler %v", server != nil, process != nil)
	}
	if process.Name() != "process marketing.lead.captured" || process.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("handler span is %v %q", process.SpanKind(), process.Name())
	}
	if links := process.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != server.SpanContext().SpanID() {
		t.Fatalf("handler span links %v, want the CaptureLead server span %s", links, server.SpanContext().SpanID())
	}
	// One message: the consumer span is also the CaptureLead span's child, in the capture's trace.
	if process.Parent().SpanID() != server.SpanContext().SpanID() || process.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Fatalf("handler span's parent %v, want the CaptureLead server span %v", process.Parent(), server.SpanContext())
	}
}
