package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/servicetest"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// TestPublicRoutes checks the routes served without a key: liveness, readiness, the OpenAPI
// document in JSON and YAML, and its docs page.
func TestPublicRoutes(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	tests := []struct {
		path, wantType, wantBody string
	}{
		{"/healthz", "text/plain; charset=utf-8", "ok"},
		{"/readyz", "text/plain; charset=utf-8", "ok"},
		{"/openapi.json", "application/json", `"/v1/leads"`},
		{"/openapi.yaml", "application/yaml", `/v1/leads:`},
		{"/docs", "text/html", "/openapi.json"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := sys.Do(t, http.MethodGet, tt.path, "", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
			}
			if got := r.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type: got %q, want %q", got, tt.wantType)
			}
			if !strings.Contains(string(r.Body), tt.wantBody) {
				t.Errorf("body lacks %s: %.200s", tt.wantBody, r.Body)
			}
		})
	}

}

// TestNotReadyWhileTheCheckFails checks that /readyz follows the readiness check, so a load
// balancer stops sending requests while the store is unreachable; the public port does not say
// why (addresses, error text): the admin port's /readyz does.
func TestNotReadyWhileTheCheckFails(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tel := telemetry.ForTest(sdktrace.NewTracerProvider(), metricnoop.NewMeterProvider())
	h, err := gateway.New(t.Context(), gateway.Config{MaxBodyBytes: 1 << 10},
		gateway.Backends{Marketing: conn, Sales: conn, Product: conn, Support: conn}, tel,
		func(context.Context) error { return errors.New("redis unreachable") })
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "redis unreachable") ||
		rec.Header().Get("Retry-After") == "" {
		t.Fatalf("/readyz while the check fails: %d %q (Retry-After %q), want 503 with Retry-After, without the cause",
			rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
}

// TestNotReadySaysWhyForTheStore: an uninitialized store, or one initialized with another partition
// count, is what an operator must act on, so the public /readyz says it and what to run.
func TestNotReadySaysWhyForTheStore(t *testing.T) {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tel := telemetry.ForTest(sdktrace.NewTracerProvider(), metricnoop.NewMeterProvider())
	for _, cause := range []error{
		fmt.Errorf("%w; run: crm admin redis init --partitions 16", keyspace.ErrNotInitialized),
		&keyspace.MismatchError{Recorded: 8, Configured: 16, Running: true},
	} {
		h, err := gateway.New(t.Context(), gateway.Config{MaxBodyBytes: 1 << 10},
			gateway.Backends{Marketing: conn, Sales: conn, Product: conn, Support: conn}, tel,
			func(context.Context) error { return cause })
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), cause.Error()) ||
			!strings.Contains(rec.Body.String(), "crm admin redis init --partitions 16") || rec.Header().Get("Retry-After") == "" {
			t.Errorf("/readyz while %v: %d %q (Retry-After %q), want 503 with Retry-After saying why",
				cause, rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
	}
}
