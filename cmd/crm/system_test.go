package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	"github.com/crmcycle/crm/pkg/telemetry"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// system is the whole suite running in this test process on loopback ports: the real gateway,
// gRPC server, interceptors and Redis store, with spans going to a recorder.
type system struct {
	rest  string
	grpc  *grpc.ClientConn
	spans *tracetest.SpanRecorder
	rdb   redis.UniversalClient
}

// startSystem starts the suite; options adjust its configuration (rate limits are off unless set).
func startSystem(t *testing.T, options ...func(*processConfig)) *system {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tel := telemetry.ForTest(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), metricnoop.NewMeterProvider())
	cfg := processConfig{
		Targets:       append(append([]string{}, serviceTargets...), gatewayTarget),
		GRPC:          grpcserver.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, HealthInterval: time.Second},
		Gateway:       gateway.Config{Addr: "127.0.0.1:0", MaxBodyBytes: 64 << 10},
		Redis:         redisconn.Config{URL: redistest.URL(), Partitions: 16},
		AdminAddr:     "127.0.0.1:0",
		ServiceAddrs:  map[string]*string{},
		ClientTimeout: 5 * time.Second,
		Bus: busConfig{
			Consumer:  events.ConsumerConfig{ClaimIdle: time.Second, MaxDeliveries: 3},
			Retention: events.Retention{MaxAge: time.Hour, MaxLen: 10_000, Interval: time.Minute},
		},
	}
	for _, s := range serviceTargets {
		cfg.ServiceAddrs[s] = new(string)
	}
	for _, o := range options {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan boundAddrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- runProcess(ctx, cfg, processEnv{
			Telemetry: tel,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnReady:   func(b boundAddrs) { ready <- b },
		})
	}()
	var bound boundAddrs
	select {
	case bound = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("process did not start: %v", err)
	}
	conn, err := grpc.NewClient(bound.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process stopped with %v", err)
		}
	})
	return &system{rest: "http://" + bound.HTTP, grpc: conn, spans: spans, rdb: redistest.Client(t)}
}

// newKey creates a tenant (or reuses tenant when given) and an API key with scopes.
func (s *system) newKey(t *testing.T, tenant string, scopes ...string) (string, string) {
	t.Helper()
	return servicetest.NewKey(t, s.rdb, tenant, scopes...)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
	return m
}

func (s *system) do(t *testing.T, method, path, key string, body []byte) response {
	t.Helper()
	r := (&gatewaytest.Edge{URL: s.rest}).Do(t, method, path, key, body)
	return response{status: r.Status, header: r.Header, body: r.Body}
}

func (s *system) marketing(key string) (marketingv1.MarketingServiceClient, context.Context) {
	return marketingv1.NewMarketingServiceClient(s.grpc), servicetest.WithKey(context.Background(), key)
}

// errorStatus returns error.status of an AIP-193 error body.
func errorStatus(t *testing.T, r response) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

// Marketing shortcuts for the tests here that need marketing beside other services; marketing's
// own tests live in services/marketing/rpc.

const campaignBody = `{"displayName":"Spring webinar","channel":"CHANNEL_EMAIL",
	"budget":{"currencyCode":"EUR","units":"1000"},"actualCost":{"currencyCode":"EUR","units":"300"},
	"startTime":"2026-03-01T00:00:00Z","endTime":"2026-04-01T00:00:00Z"}`

func (s *system) createCampaign(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/campaigns", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("create campaign: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func (s *system) captureLead(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/leads", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	return r.json(t)
}

// Product shortcuts for the tests that cross services (the customer 360, the cycle, orders placed
// through sales); the product service's own tests are in services/product/rpc.

// createProduct creates a product over REST and returns its JSON.
func (s *system) createProduct(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/products", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("create product: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func productBody(sku, name, period string) string {
	return fmt.Sprintf(`{"sku":%q,"displayName":%q,"category":"crm","billingPeriod":%q,
		"price":{"currencyCode":"EUR","units":"10","nanos":500000000},
		"additionalPrices":[{"currencyCode":"USD","units":"12"}],"productLine":"suite","tier":1,
		"features":["reports","pipeline"]}`, sku, name, period)
}

// waitFor polls get until ok, or fails the test after a deadline.
func waitFor[T any](t *testing.T, what string, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: reactions cross the bus on a loaded machine
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 30s", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscriptionsOf lists a customer's subscriptions over REST.
func (s *system) subscriptionsOf(t *testing.T, key, customer string) []map[string]any {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/subscriptions?filter=customer_id%3D%22"+customer+"%22", key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list subscriptions: %d %s", r.status, r.body)
	}
	var out []map[string]any
	list, _ := r.json(t)["subscriptions"].([]any)
	for _, s := range list {
		out = append(out, s.(map[string]any))
	}
	return out
}
