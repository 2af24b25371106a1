package gateway_test

import (
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// TestOneTraceFromGatewayToTheService follows a REST capture: the gateway's server span, named for
// the route, its gRPC client span and the service's server span share one trace and nest in that
// order.
func TestOneTraceFromGatewayToTheService(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.write")
	if r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"trace@example.com"}`)); r.Status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.Status, r.Body)
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
	var gw, client, server sdktrace.ReadOnlySpan
	var spans []sdktrace.ReadOnlySpan
	// Server spans end just after the response is written: wait (bounded) until all three ended.
	for deadline := time.Now().Add(5 * time.Second); ; {
		spans = sys.Suite.Spans.Ended()
		if gw = find(spans, isGateway); gw != nil {
			traceID := gw.SpanContext().TraceID()
			inTrace := func(match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
				return find(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() == traceID && match(s) })
			}
			client = inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindClient && s.Name() == method })
			server = inTrace(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindServer && s.Name() == method })
			if client != nil && server != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
			t.Fatalf("the trace lacks a span: gateway %v, gRPC client %v, service server %v; ended spans: %v",
				gw != nil, client != nil, server != nil, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	parentOf := func(child, parent sdktrace.ReadOnlySpan) bool {
		return child.Parent().SpanID() == parent.SpanContext().SpanID()
	}
	if !parentOf(client, gw) || !parentOf(server, client) {
		t.Fatalf("spans do not nest gateway > gRPC client > service server")
	}
}
