package integration_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration"
)

// TestWebhookMetrics reads the dispatcher's metrics with the SDK's manual reader: one event to an
// endpoint answering 500, 500, then 200 counts two failed and retried attempts and one delivered,
// with three attempt durations and one commit-to-delivery latency no longer than the test took;
// to an endpoint answering 410 it counts one failed attempt and one dead delivery. Each series
// carries its endpoint.
func TestWebhookMetrics(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{})
	tenant := redistest.Tenant(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	cfg := integration.DispatchConfig{Timeout: time.Second, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Poll: 20 * time.Millisecond, AllowPrivate: true}
	in := startInstanceWith(t, suite, cfg, mp)

	var flaky atomic.Int64
	flakyRC := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if flaky.Add(1) <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(flakyRC.Close)
	goneRC := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(goneRC.Close)
	ctx := context.Background()
	flakyEP, err := in.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: flakyRC.URL, EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	goneEP, err := in.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: goneRC.URL, EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pub := events.Publisher{Producer: "sales", Propagator: suite.Telemetry.Propagator}
	_, data, err := pub.Envelope(ctx, eventv1.Type[*wrapperspb.StringValue]{Name: "sales.deal.won"}.Of(wrapperspb.String("x")), tenant, "c-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.New().Append(suite.Deps.Keys.Scope("sales", tenant).Stream(), data).Run(ctx, suite.Redis); err != nil {
		t.Fatal(err)
	}

	// Only this test's endpoints: the package's other tests share the redis-server, and this
	// instance's dispatcher also polls their due deliveries.
	mine := map[string]bool{flakyEP.GetId(): true, goneEP.GetId(): true}
	type key struct{ endpoint, outcome string }
	collect := func() (counts map[key]int64, attempts map[key]uint64, latency map[string]metricdata.HistogramDataPoint[float64]) {
		counts, attempts, latency = map[key]int64{}, map[key]uint64{}, map[string]metricdata.HistogramDataPoint[float64]{}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		attr := func(s attribute.Set, name string) string { v, _ := s.Value(attribute.Key(name)); return v.AsString() }
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch data := m.Data.(type) {
				case metricdata.Sum[int64]:
					if m.Name == "crm.webhook.deliveries" {
						for _, p := range data.DataPoints {
							if !mine[attr(p.Attributes, "endpoint")] {
								continue
							}
							counts[key{attr(p.Attributes, "endpoint"), attr(p.Attributes, "outcome")}] += p.Value
						}
					}
				case metricdata.Histogram[float64]:
					for _, p := range data.DataPoints {
						switch m.Name {
						case "crm.webhook.attempt.duration":
							attempts[key{attr(p.Attributes, "endpoint"), attr(p.Attributes, "outcome")}] += p.Count
						case "crm.webhook.delivery.latency":
							latency[attr(p.Attributes, "endpoint")] = p
						}
					}
				}
			}
		}
		return counts, attempts, latency
	}
	f, g := flakyEP.GetId(), goneEP.GetId()
	want := map[key]int64{{f, "failed"}: 2, {f, "retried"}: 2, {f, "delivered"}: 1, {g, "failed"}: 1, {g, "dead"}: 1}
	deadline := time.Now().Add(30 * time.Second)
	var counts map[key]int64
	for {
		counts, _, _ = collect()
		if counts[key{f, "delivered"}] == 1 && counts[key{g, "dead"}] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after 30s: %v, want %v", counts, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	counts, attempts, latency := collect()
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("crm.webhook.deliveries%v = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("crm.webhook.deliveries has series %v, want only %v", counts, want)
	}
	if attempts[key{f, "failed"}] != 2 || attempts[key{f, "delivered"}] != 1 || attempts[key{g, "failed"}] != 1 {
		t.Errorf("crm.webhook.attempt.duration counts %v, want 2 failed and 1 delivered for the flaky endpoint, 1 failed for the gone one", attempts)
	}
	p, ok := latency[f]
	if !ok || p.Count != 1 || p.Sum <= 0 || p.Sum > elapsed.Seconds()+0.01 {
		t.Errorf("crm.webhook.delivery.latency of the flaky endpoint: %+v, want one delivery within the %v the test took", p, elapsed)
	}
	if _, ok := latency[g]; ok {
		t.Errorf("a latency was recorded for the endpoint that never took a delivery")
	}

	// The stages: read, batch and record for every event recorded (the sales event and the
	// integration service's own endpoint events), queue and send for each delivery's first
	// attempt (two: one per endpoint), each no longer than the test took.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	stages := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if data, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "crm.webhook.stage.duration" {
				for _, p := range data.DataPoints {
					v, _ := p.Attributes.Value("stage")
					stages[v.AsString()] = p
				}
			}
		}
	}
	for _, stage := range []string{integration.StageRead, integration.StageBatch, integration.StageRecord, integration.StageQueue, integration.StageSend} {
		p, ok := stages[stage]
		switch {
		case !ok:
			t.Errorf("no %s stage recorded", stage)
		case (stage == integration.StageQueue || stage == integration.StageSend) && p.Count < 2:
			t.Errorf("stage %s recorded %d times, want at least 2 (the first attempt of each delivery)", stage, p.Count)
		case p.Count < 1 || p.Sum < 0 || p.Sum > float64(p.Count)*elapsed.Seconds()+0.01:
			t.Errorf("stage %s: %d recorded, %.3fs in all, want at least one, each within the %v the test took", stage, p.Count, p.Sum, elapsed)
		}
	}
	if len(stages) != 5 {
		t.Errorf("stages recorded: %v, want read, batch, record, queue, send", slices.Sorted(maps.Keys(stages)))
	}
}
