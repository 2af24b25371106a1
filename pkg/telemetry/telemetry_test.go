package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "op")
	if !span.SpanContext().IsValid() {
		t.Errorf("span context: got invalid, want a recording provider")
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
