package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/crmcycle/crm/pkg/telemetry"
)

func TestSetup(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_SERVICE_NAME", "")
	tel, err := telemetry.Setup(context.Background(), "marketing")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	counter, err := tel.MeterProvider.Meter("test").Int64Counter("crm_test_calls")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
	// No exporter: nothing is recorded, but an incoming trace context still passes through.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, span := tel.TracerProvider.Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "op")
	if span.IsRecording() || span.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("span without an exporter: recording %v, trace %s; want not recording, trace %s",
			span.IsRecording(), span.SpanContext().TraceID(), parent.TraceID())
	}
	span.End()

	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"crm_test_calls", "go_goroutines", `service_name="crm-marketing"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestSetupRecordsSpansWhenExported(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	tel, err := telemetry.Setup(context.Background(), "marketing")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "op")
	if !span.IsRecording() || !span.SpanContext().IsValid() {
		t.Errorf("span with an exporter: recording %v, valid %v; want both", span.IsRecording(), span.SpanContext().IsValid())
	}
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
