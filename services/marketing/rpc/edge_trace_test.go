package main

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
	"github.com/crmcycle/crm/pkg/keyspace"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestOneTraceFromGatewayToRedis follows a REST capture: the gateway's server span, its gRPC
// client span, the marketing server span and the Redis span share one trace and nest in that order.
func TestOneTraceFromGatewayToRedis(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", "marketing.write")
	if r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"trace@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}

	find := func(spans []sdktrace.ReadOnlySpan, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		for _, s := range spans {
			if match(s) {
				return s
			}
		}
		return nil
	}
	isGateway := func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindServer && s.Name() == "POST /v1/leads"
	}
	const method = "crm.marketing.v1.MarketingService/CaptureLead"
	var gw, client, server, redis sdktrace.ReadOnlySpan
	var spans []sdktrace.ReadOnlySpan
	// Server spans end just after the response is written: wait (bounded) until all four ended.
	for deadline := time.Now().Add(5 * time.Second); ; {
		spans = sys.spans.Ended()
		if gw = find(spans, isGateway); gw != nil {
			traceID := gw.SpanContext().TraceID()
			inTrace := func(match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
				return find(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() == traceID && match(s) })
			}
			client = inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindClient && s.Name() == method })
			server = inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindServer && s.Name() == method })
			redis = inTrace(func(s sdktrace.ReadOnlySpan) bool {
				return s.SpanKind() == trace.SpanKindClient && strings.HasPrefix(strings.ToLower(s.Name()), "eval")
			})
			if client != nil && server != nil && redis != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
			t.Fatalf("the trace lacks a span: gateway %v, gRPC client %v, marketing server %v, Redis %v; ended spans: %v",
				gw != nil, client != nil, server != nil, redis != nil, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	parentOf := func(child, parent sdktrace.ReadOnlySpan) bool {
		return child.Parent().SpanID() == parent.SpanContext().SpanID()
	}
	if !parentOf(client, gw) || !parentOf(server, client) || !parentOf(redis, server) {
		t.Fatalf("spans do not nest gateway > gRPC client > marketing server > Redis")
	}
}

// TestConsumerSpanLinksToTheCapturingRPC follows a REST capture onto the bus: the handler of the
// marketing.lead.captured event runs in a consumer span linked to the marketing server span that
// wrote the event.
func TestConsumerSpanLinksToTheCapturingRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", "marketing.write")
	captured := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"bus@example.com"}`))
	if captured.status != http.StatusOK {
		t.Fatalf("capture: %d %s", captured.status, captured.body)
	}
	leadID := captured.json(t)["id"].(string)

	keys, err := keyspace.Open(context.Background(), sys.rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan trace.SpanContext, 1)
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
		}}, sys.rdb, keys, sys.tel, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	// The group starts at the beginning of the partition streams, which hold the events of every
	// test before this one in the shared Redis: a generous deadline for the backlog on a busy machine.
	case <-time.After(60 * time.Second):
		t.Fatal("the capture's event was not handled")
	}
	stop() // the consumer span ends before Run returns
	var server, process sdktrace.ReadOnlySpan
	for _, s := range sys.spans.Ended() {
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
}
