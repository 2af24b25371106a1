package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
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
	// Spans end just after the response is written, so wait for the gateway span (bounded).
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); ; {
		spans = sys.spans.Ended()
		if find(spans, isGateway) != nil {
			break
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
			t.Fatalf("no gateway span among %d ended spans: %v", len(spans), names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	gw := find(spans, isGateway)
	traceID := gw.SpanContext().TraceID()
	inTrace := func(match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		return find(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() == traceID && match(s) })
	}
	const method = "crm.marketing.v1.MarketingService/CaptureLead"
	client := inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindClient && s.Name() == method })
	server := inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindServer && s.Name() == method })
	redis := inTrace(func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindClient && strings.HasPrefix(strings.ToLower(s.Name()), "eval")
	})
	if client == nil || server == nil || redis == nil {
		var names []string
		for _, s := range spans {
			if s.SpanContext().TraceID() == traceID {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
		}
		t.Fatalf("trace %s lacks a span: gRPC client %v, marketing server %v, Redis %v; it has %v",
			traceID, client != nil, server != nil, redis != nil, names)
	}
	parentOf := func(child, parent sdktrace.ReadOnlySpan) bool {
		return child.Parent().SpanID() == parent.SpanContext().SpanID()
	}
	if !parentOf(client, gw) || !parentOf(server, client) || !parentOf(redis, server) {
		t.Fatalf("spans do not nest gateway > gRPC client > marketing server > Redis")
	}
}
