package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// startMeasured starts the system with its metrics (the gateway's and the gRPC server's) read by
// the SDK's manual reader, and a client that sends every request over one connection: the server
// reads a connection's next request only once the last one's handler returned, after otelhttp
// recorded its metrics, so a request answered is a request counted (see barrier).
func startMeasured(t *testing.T) (*system, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	sys := startSystem(t, servicetest.Options{MeterProvider: mp}, gateway.Config{})
	transport := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(transport.CloseIdleConnections)
	sys.Client = &http.Client{Transport: transport}
	return sys, reader
}

// barrier returns once every request sent before it has been measured: /healthz goes on the same
// connection, so the server reads it only after the last API request's handler returned.
func (s *system) barrier(t *testing.T) {
	t.Helper()
	if r := s.Do(t, http.MethodGet, "/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
}

// points returns the data points of the named metric, as attribute sets with their counts (a
// histogram's count, a sum's value).
func points(t *testing.T, reader *sdkmetric.ManualReader, name string) map[attribute.Distinct]struct {
	attrs attribute.Set
	n     int64
} {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[attribute.Distinct]struct {
		attrs attribute.Set
		n     int64
	}{}
	add := func(attrs attribute.Set, n int64) {
		p := got[attrs.Equivalent()]
		p.attrs, p.n = attrs, p.n+n
		got[attrs.Equivalent()] = p
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, int64(dp.Count))
				}
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, dp.Value)
				}
			}
		}
	}
	return got
}

// TestRequestDurationByRoute: http.server.request.duration carries the route template as
// http.route (two leads read are one series, /v1/leads/{id}), for the requests the edge refuses
// itself too (a 405); a path that is no route, or a custom method the resource lacks, carries
// none, and no series names a raw path.
func TestRequestDurationByRoute(t *testing.T) {
	sys, reader := startMeasured(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	const a, b = "0190a1b2-c3d4-7e5f-8a9b-000000000001", "0190a1b2-c3d4-7e5f-8a9b-000000000002"
	requests := []struct {
		method, path string
		body         string
		status       int
	}{
		{http.MethodPost, "/v1/leads", `{"email":"route@example.com"}`, http.StatusOK},
		{http.MethodGet, "/v1/leads/" + a, "", http.StatusOK},
		{http.MethodGet, "/v1/leads/" + b, "", http.StatusOK},
		{http.MethodPost, "/v1/leads/" + a + ":qualify", `{}`, http.StatusOK},
		{http.MethodPut, "/v1/leads/" + a, `{}`, http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nowhere/" + a, "", http.StatusNotFound},
		{http.MethodPost, "/v1/leads/" + a + ":frobnicate", `{}`, http.StatusNotFound},
	}
	for _, r := range requests {
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		if got := sys.Do(t, r.method, r.path, key, body); got.Status != r.status {
			t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, got.Status, got.Body, r.status)
		}
	}
	sys.barrier(t)

	type series struct {
		method, route string
		status        int64
	}
	got := map[series]int64{}
	for _, p := range points(t, reader, "http.server.request.duration") {
		method, _ := p.attrs.Value("http.request.method")
		route, _ := p.attrs.Value("http.route")
		code, _ := p.attrs.Value("http.response.status_code")
		got[series{method.AsString(), route.AsString(), code.AsInt64()}] += p.n
		for _, kv := range p.attrs.ToSlice() {
			if v := kv.Value.Emit(); strings.Contains(v, "0190a1b2") || strings.Contains(v, "nowhere") {
				t.Errorf("series %v names a raw path in %s", p.attrs.ToSlice(), kv.Key)
			}
		}
	}
	want := map[series]int64{
		{"POST", "/v1/leads", 200}:              1,
		{"GET", "/v1/leads/{id}", 200}:          2,
		{"POST", "/v1/leads/{id}:qualify", 200}: 1,
		{"PUT", "/v1/leads/{id}", 405}:          1,
		{"GET", "", 404}:                        1,
		{"POST", "", 404}:                       1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("request counts by method, route and status (-want +got):\n%s", diff)
	}
}

// TestReplaysAreMarkedAndCounted: a replay answers with Idempotent-Replayed: true over REST (a
// success and a stored error alike) and with the idempotent-replayed header metadata over gRPC,
// and counts one crm.idempotency.replays of its method; a first call does neither, and a key
// reused for another request counts one refusal.
func TestReplaysAreMarkedAndCounted(t *testing.T) {
	sys, reader := startMeasured(t)
	_, key := sys.NewKey(t, "", "marketing.write")
	body := []byte(`{"email":"replayed@example.com"}`)
	const replayed = "Idempotent-Replayed"

	if r := sys.captureWithKey(t, key, "m-1", body); r.Status != http.StatusOK || r.Header.Get(replayed) != "" {
		t.Fatalf("first: %d %s, %s %q: want 200 without it", r.Status, r.Body, replayed, r.Header.Get(replayed))
	}
	if r := sys.captureWithKey(t, key, "m-1", body); r.Status != http.StatusOK || r.Header.Get(replayed) != "true" {
		t.Fatalf("replay: %d %s, %s %q: want 200 with true", r.Status, r.Body, replayed, r.Header.Get(replayed))
	}
	invalid := []byte(`{"email":"` + rejectedEmail + `"}`)
	if r := sys.captureWithKey(t, key, "m-bad", invalid); r.Status != http.StatusBadRequest || r.Header.Get(replayed) != "" {
		t.Fatalf("first error: %d %s, %s %q: want 400 without it", r.Status, r.Body, replayed, r.Header.Get(replayed))
	}
	if r := sys.captureWithKey(t, key, "m-bad", invalid); r.Status != http.StatusBadRequest || r.Header.Get(replayed) != "true" {
		t.Fatalf("replayed error: %d %s, %s %q: want 400 with true", r.Status, r.Body, replayed, r.Header.Get(replayed))
	}
	if r := sys.captureWithKey(t, key, "m-1", []byte(`{"email":"other@example.com"}`)); r.Status != http.StatusUnprocessableEntity || r.Header.Get(replayed) != "" {
		t.Fatalf("key reused: %d %s, %s %q: want 422 without it", r.Status, r.Body, replayed, r.Header.Get(replayed))
	}

	client := marketingv1.NewMarketingServiceClient(sys.Suite.Conn)
	ctx := metadata.AppendToOutgoingContext(servicetest.WithKey(t.Context(), key), "idempotency-key", "g-1")
	req := &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc-replayed@example.com"}}
	for i, want := range [][]string{nil, {"true"}} {
		var header metadata.MD
		if _, err := client.CaptureLead(ctx, req, grpc.Header(&header)); err != nil || !slices.Equal(header.Get("idempotent-replayed"), want) {
			t.Fatalf("gRPC call %d: %v, idempotent-replayed %q, want %q", i, err, header.Get("idempotent-replayed"), want)
		}
	}

	const capture = "crm.marketing.v1.MarketingService/CaptureLead"
	got := map[string]int64{}
	for _, name := range []string{"crm.idempotency.replays", "crm.idempotency.refusals"} {
		for _, p := range points(t, reader, name) {
			method, _ := p.attrs.Value("rpc.method")
			reason, _ := p.attrs.Value("reason")
			got[name+" "+method.AsString()+" "+reason.AsString()] += p.n
		}
	}
	want := map[string]int64{
		"crm.idempotency.replays " + capture + " ":                        3,
		"crm.idempotency.refusals " + capture + " IDEMPOTENCY_KEY_REUSED": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("idempotency counters (-want +got):\n%s", diff)
	}
}
