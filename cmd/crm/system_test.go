package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	"github.com/crmcycle/crm/pkg/telemetry"
	"github.com/crmcycle/crm/pkg/tlstest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// system is the whole suite running in this test process on loopback ports: the real gateway,
// gRPC server, interceptors and Redis store, with spans going to a recorder.
type system struct {
	rest   string
	client *http.Client // nil: http.DefaultClient
	grpc   *grpc.ClientConn
	spans  *tracetest.SpanRecorder
	rdb    redis.UniversalClient
}

// startSystem starts the suite; options adjust its configuration (rate limits are off unless set).
func startSystem(t *testing.T, options ...func(*processConfig)) *system {
	t.Helper()
	return startSystemAt(t, nil, options...)
}

// startSystemAt starts the suite with its services' clock at now (time.Now when nil).
func startSystemAt(t *testing.T, now func() time.Time, options ...func(*processConfig)) *system {
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
	var rdb redis.UniversalClient // the suite's store, for the tests' keys and snapshots
	if strings.HasPrefix(cfg.Redis.URL, "redis+cluster://") {
		rdb = redistest.ClusterClient(t)
	} else {
		rdb = redistest.Client(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan boundAddrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- runProcess(ctx, cfg, processEnv{
			Telemetry: tel,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnReady:   func(b boundAddrs) { ready <- b },
			Now:       now,
		})
	}()
	var bound boundAddrs
	select {
	case bound = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("process did not start: %v", err)
	}
	// The test's clients trust what the process's own clients trust (--tls-ca, or its certificate).
	creds, scheme, client := insecure.NewCredentials(), "http", (*http.Client)(nil)
	if cfg.GRPC.TLS() {
		tlsCfg, err := cfg.GRPC.ClientTLS()
		if err != nil {
			t.Fatal(err)
		}
		creds, scheme = credentials.NewTLS(tlsCfg), "https"
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	}
	conn, err := grpc.NewClient(bound.GRPC, grpc.WithTransportCredentials(creds))
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
	return &system{rest: scheme + "://" + bound.HTTP, client: client, grpc: conn, spans: spans, rdb: rdb}
}

// onCluster runs the suite on the package's real 3-master Redis Cluster (redistest.ClusterURL)
// instead of its standalone Redis.
func onCluster(t *testing.T) func(*processConfig) {
	url := redistest.ClusterURL(t)
	return func(c *processConfig) { c.Redis.URL = url }
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
	r := (&gatewaytest.Edge{URL: s.rest, Client: s.client}).Do(t, method, path, key, body)
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

// streamedEventIDs is the ids of the tenant's events in every service's stream that keep accepts,
// sorted (UUIDv7 ids sort by time): what the integration service's views are checked against.
func streamedEventIDs(t *testing.T, sys *system, tenant string, keep func(*eventv1.Event) bool) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := keyspace.Load(ctx, sys.rdb)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, producer := range serviceTargets {
		entries, err := sys.rdb.XRange(ctx, keys.Scope(producer, tenant).Stream(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			ev, err := events.Decode([]byte(e.Values["e"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetTenantId() == tenant && keep(ev) {
				ids = append(ids, ev.GetId())
			}
		}
	}
	slices.Sort(ids)
	return ids
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

// grantsOf lists a customer's subscriptions and one-time entitlements over REST.
func (s *system) grantsOf(t *testing.T, key, customer string) []map[string]any {
	t.Helper()
	out := s.subscriptionsOf(t, key, customer)
	list, _ := s.ok(t, http.MethodGet, "/v1/customers/"+customer+"/entitlements", key, "")["entitlements"].([]any)
	for _, e := range list {
		out = append(out, e.(map[string]any))
	}
	return out
}

// withTLS serves gRPC and REST with a certificate of ca (for 127.0.0.1), verifying the services
// against caFile ("" to rely on the serving certificate), with more flags set by more.
func withTLS(t *testing.T, ca *tlstest.CA, caFile string, more ...func(*grpcserver.Config)) func(*processConfig) {
	certFile, keyFile := ca.Issue(t, "crm-server")
	return func(c *processConfig) {
		c.GRPC.CertFile, c.GRPC.KeyFile = certFile, keyFile
		c.GRPC.CAFile = caFile
		for _, m := range more {
			m(&c.GRPC)
		}
	}
}

// TestTLSEndToEnd serves gRPC and REST with certificates of a private CA made in the test: REST
// through the gateway, gRPC, and a call across services (an order priced by product) all work,
// whether the process is given the CA or trusts its own certificate, and with mutual TLS.
func TestTLSEndToEnd(t *testing.T) {
	ca := tlstest.NewCA(t, "crm-test")
	clientCert, clientKey := ca.Issue(t, "crm-client")
	for _, tt := range []struct {
		name string
		opt  func(*processConfig)
	}{
		{"the CA given", withTLS(t, ca, ca.File)},
		{"its own certificate trusted", withTLS(t, ca, "")},
		{"mutual TLS", withTLS(t, ca, ca.File, func(g *grpcserver.Config) {
			g.ClientCertFile, g.ClientKeyFile, g.RequireClientCert = clientCert, clientKey, true
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sys := startSystem(t, tt.opt)
			if !strings.HasPrefix(sys.rest, "https://") {
				t.Fatalf("REST at %s, want https", sys.rest)
			}
			_, key := sys.newKey(t, "", "admin")
			if r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"tls@example.com"}`)); r.status != http.StatusOK {
				t.Fatalf("REST capture over TLS: %d %s", r.status, r.body)
			}
			client, ctx := sys.marketing(key)
			if _, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{}); err != nil {
				t.Fatalf("gRPC over TLS: %v", err)
			}
			product := sys.createProduct(t, key, productBody("TLS-1", "TLS", "BILLING_PERIOD_MONTHLY"))["id"].(string)
			contact := sys.do(t, http.MethodPost, "/v1/contacts", key, []byte(`{"email":"tls-buyer@example.com"}`))
			if contact.status != http.StatusOK {
				t.Fatalf("contact: %d %s", contact.status, contact.body)
			}
			order := sys.do(t, http.MethodPost, "/v1/orders", key, fmt.Appendf(nil,
				`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":"1"}]}`, contact.json(t)["customerId"], product))
			if order.status != http.StatusOK {
				t.Fatalf("an order priced by product across services over TLS: %d %s", order.status, order.body)
			}
		})
	}
}

// TestTLSWithTheWrongCA: a process told to verify its services against another CA cannot reach
// them; REST answers 503 with Retry-After, never the TLS error's text.
func TestTLSWithTheWrongCA(t *testing.T) {
	ca, other := tlstest.NewCA(t, "crm-test"), tlstest.NewCA(t, "another")
	sys := startSystem(t, withTLS(t, ca, other.File))
	// The test's own client trusts the serving CA; the process's clients trust the other.
	sys.client = &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(t, "", "")}}
	_, key := sys.newKey(t, "", "admin")
	r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"wrong-ca@example.com"}`))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("REST through a gateway that cannot verify the service: %d (Retry-After %q) %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	for _, leak := range []string{"x509", "tls", "certificate", "127.0.0.1"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("503 body carries %q: %s", leak, r.body)
		}
	}
}

// faultProxy is an in-process toxiproxy between two parts of the suite.
func faultProxy(t *testing.T, name, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// addToxic adds a toxic (toxiproxy's JSON form) to both directions of p.
func addToxic(t *testing.T, p *toxiproxy.Proxy, typ, attributes string) {
	t.Helper()
	for _, stream := range []string{"upstream", "downstream"} {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
			`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, typ+"-"+stream, typ, stream, attributes))); err != nil {
			t.Fatal(err)
		}
	}
}

// outcome is what a client saw of one write.
type outcome struct {
	status     int
	retryAfter string
	id         string // the created resource's id, when acknowledged
	customer   string
	what       string
	body       string
}

// writeLoad is clients capturing leads and placing orders (one per prepared customer) through the
// REST edge, recording every answer, while a test injects faults.
type writeLoad struct {
	mu       sync.Mutex
	outcomes []outcome
	stop     chan struct{}
	workers  sync.WaitGroup
}

// startLoad prepares a product and customers, then runs workers until finish.
func startLoad(t *testing.T, sys *system, key string, workers int) *writeLoad {
	t.Helper()
	product := sys.createProduct(t, key, productBody("FAULT-"+redistest.Tenant(t), "Fault", "BILLING_PERIOD_ONE_TIME"))["id"].(string)
	l := &writeLoad{stop: make(chan struct{})}
	for w := range workers {
		l.workers.Go(func() {
			for n := 0; ; n++ {
				// Paced, so the checks afterwards stay short: a few dozen writes a second.
				select {
				case <-l.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				var o outcome
				var r response
				if n%2 == 0 {
					o.what = "lead"
					r = sys.do(t, http.MethodPost, "/v1/leads", key, fmt.Appendf(nil, `{"email":"w%d-%d@example.com"}`, w, n))
				} else {
					// One order per customer, a new customer each time: an order that failed may
					// still have been placed, so its customer is not ordered for again.
					c := sys.do(t, http.MethodPost, "/v1/contacts", key, fmt.Appendf(nil, `{"email":"c%d-%d@example.com"}`, w, n))
					if c.status != http.StatusOK {
						continue
					}
					o.customer = str(c.json(t), "customerId")
					o.what = "order"
					r = sys.do(t, http.MethodPost, "/v1/orders", key, fmt.Appendf(nil,
						`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":"1"}]}`, o.customer, product))
				}
				o.status, o.retryAfter, o.body = r.status, r.header.Get("Retry-After"), string(r.body)
				if r.status == http.StatusOK {
					o.id = str(r.json(t), "id")
				}
				l.mu.Lock()
				l.outcomes = append(l.outcomes, o)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// recovered waits until, after the faults, both kinds of write succeed again, then stops the
// clients and returns every answer.
func (l *writeLoad) recovered(t *testing.T) []outcome {
	t.Helper()
	l.mu.Lock()
	from := len(l.outcomes)
	l.mu.Unlock()
	var once sync.Once
	stop := func() { once.Do(func() { close(l.stop); l.workers.Wait() }) }
	defer stop() // also when the wait fails
	waitFor(t, "writes succeed again after the faults", func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		ok := map[string]bool{}
		for _, o := range l.outcomes[from:] {
			ok[o.what] = ok[o.what] || o.status == http.StatusOK
		}
		return len(ok)
	}, func(kinds int) bool { return kinds == 2 })
	stop() // the workers append to outcomes until they are stopped
	return l.outcomes
}

// checkHonestAndKept asserts that every answer was a success, a 503 with Retry-After or a 429, that
// some were 503 (the faults reached the calls), that every acknowledged lead and order is there,
// and that every acknowledged order was reacted to exactly once (one loyalty credit).
func checkHonestAndKept(t *testing.T, sys *system, key string, outcomes []outcome) {
	t.Helper()
	seen := map[int]int{}
	for _, o := range outcomes {
		seen[o.status]++
		switch {
		case o.status == http.StatusOK, o.status == http.StatusTooManyRequests:
		case o.status == http.StatusServiceUnavailable && o.retryAfter != "":
		default:
			t.Errorf("a %s answered %d (Retry-After %q): want 200, 503 with Retry-After, or 429: %s", o.what, o.status, o.retryAfter, o.body)
		}
	}
	t.Logf("answers: %v", seen)
	if seen[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 during the faults: they did not reach the calls (%v)", seen)
	}
	var points string
	for _, o := range outcomes {
		if o.status != http.StatusOK {
			continue
		}
		path := "/v1/leads/" + o.id
		if o.what == "order" {
			path = "/v1/orders/" + o.id
		}
		// A read may itself meet the end of a fault: 503 says retry, and a client does.
		r := waitFor(t, "a read that is not 503", func() response { return sys.do(t, http.MethodGet, path, key, nil) },
			func(r response) bool { return r.status != http.StatusServiceUnavailable })
		if r.status != http.StatusOK {
			t.Errorf("acknowledged %s %s: %d %s", o.what, o.id, r.status, r.body)
		}
		if o.what != "order" {
			continue
		}
		loyalty := waitFor(t, "the order's loyalty credit", func() map[string]any {
			r := sys.do(t, http.MethodGet, "/v1/customers/"+o.customer+"/loyalty", key, nil)
			if r.status != http.StatusOK {
				return nil
			}
			return r.json(t)
		}, func(l map[string]any) bool { return l != nil && str(l, "pointsBalance") != "" })
		if ledger, _ := loyalty["ledger"].([]any); len(ledger) != 1 || (points != "" && str(loyalty, "pointsBalance") != points) {
			t.Errorf("customer %s after one order: %d ledger entries, balance %s (others %s); want one credit",
				o.customer, len(ledger), str(loyalty, "pointsBalance"), points)
		}
		points = str(loyalty, "pointsBalance")
	}
}

// TestFaultsAreAnsweredHonestlyAndLoseNothing drives captures and orders through the REST gateway
// while toxiproxy, in this process, degrades the links to Redis and from sales to product:
// latency, connections reset, a silent Redis, Redis unreachable for 3 s. Every answer is a
// success, a 503 with Retry-After or a 429; afterwards every acknowledged lead and order is there,
// and every acknowledged order's reactions happened exactly once (one loyalty credit each).
func TestFaultsAreAnsweredHonestlyAndLoseNothing(t *testing.T) {
	store := redistest.NewServer(t, "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction")
	toRedis := faultProxy(t, "redis", strings.TrimPrefix(store.URL, "redis://"))
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr := "127.0.0.1:" + strconv.Itoa(port)
	toProduct := faultProxy(t, "product", grpcAddr)
	sys := startSystem(t, func(c *processConfig) {
		c.Redis.URL = "redis://" + toRedis.Listen
		c.GRPC.Addr = grpcAddr
		c.ServiceAddrs["product"] = &toProduct.Listen
		c.Bus.Consumer.ClaimIdle = 500 * time.Millisecond
	})
	sys.rdb = redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(store.URL, "redis://")})
	t.Cleanup(func() { _ = sys.rdb.Close() })
	_, key := sys.newKey(t, "", "admin")
	load := startLoad(t, sys, key, 4)
	// Each fault lasts a fixed time while the clients keep calling: the durations are the
	// scenario, not a wait for something to happen.
	during := func(d time.Duration, start, end func()) {
		start()
		time.Sleep(d)
		end()
	}
	reset := func(p *toxiproxy.Proxy) func() { return func() { p.Toxics.ResetToxics(context.Background()) } }
	during(time.Second, func() { addToxic(t, toRedis, "latency", `{"latency":150,"jitter":50}`) }, reset(toRedis))
	during(time.Second, func() { addToxic(t, toProduct, "reset_peer", `{"timeout":0}`) }, reset(toProduct))
	during(time.Second, func() { addToxic(t, toRedis, "timeout", `{"timeout":0}`) }, reset(toRedis))
	during(3*time.Second, toRedis.Stop, func() {
		if err := toRedis.Start(); err != nil {
			t.Fatal(err)
		}
	})
	checkHonestAndKept(t, sys, key, load.recovered(t))
}

// TestReadEditSendBack: a resource read, one field edited and sent back whole with PATCH and no
// updateMask updates that field, for one resource of every service (AIP-203): the output-only
// fields in the body are ignored even when altered, the immutable ones are checked against the
// stored value, the etag still guards against a concurrent edit. An explicit updateMask naming an
// output-only field is still refused, naming it.
func TestReadEditSendBack(t *testing.T) {
	sys := startSystem(t, allowPrivateWebhooks)
	_, key := sys.newKey(t, "", append(slices.Clone(allScopes), "integration.read", "integration.write", "admin")...)
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(receiver.Close)
	lead := sys.captureLead(t, key, `{"email":"round.trip@example.com","company":"Old Co","channel":"CHANNEL_WEB"}`)
	product := sys.createProduct(t, key, productBody("TRIP-1", "Round trip", "BILLING_PERIOD_MONTHLY"))
	created := func(path, body string) string {
		return path + "/" + str(sys.ok(t, http.MethodPost, path, key, body), "id")
	}
	const tampered = "2001-01-01T00:00:00Z"
	cases := []struct {
		path, field string
		value       any
		// output is an output-only field the body alters: ignored.
		output string
		// immutable is a field the update may not change, and a value other than the stored one.
		immutable, other string
	}{
		{"/v1/leads/" + str(lead, "id"), "company", "New Co", "createTime", "channel", "CHANNEL_EMAIL"},
		{created("/v1/campaigns", campaignBody), "displayName", "Autumn webinar", "createTime", "", ""},
		{created("/v1/accounts", `{"displayName":"Acme","domain":"acme.example"}`), "industry", "retail", "createTime", "", ""},
		{created("/v1/contacts", `{"email":"trip@x.example"}`), "givenName", "Trip", "createTime", "", ""},
		{"/v1/products/" + str(product, "id"), "description", "edited", "createTime", "sku", "TRIP-2"},
		{created("/v1/tickets", fmt.Sprintf(`{"customerId":%q,"subject":"Slow","channel":"TICKET_CHANNEL_WEB"}`, str(lead, "customerId"))),
			"subject", "Slower", "createTime", "channel", "TICKET_CHANNEL_EMAIL"},
		{created("/v1/webhookEndpoints", fmt.Sprintf(`{"url":%q,"description":"all"}`, receiver.URL)), "description", "edited", "createTime", "", ""},
		{"/v1/lifecycleSettings", "churnWindowDays", 120.0, "updateTime", "", ""},
		{"/v1/support/settings", "autoCloseDays", 5.0, "updateTime", "", ""},
		{"/v1/integrationSettings", "auditRetentionDays", 30.0, "updateTime", "", ""},
	}
	for _, c := range cases {
		t.Run(strings.Split(c.path, "/")[2], func(t *testing.T) {
			read := sys.ok(t, http.MethodGet, c.path, key, "")
			sent := maps.Clone(read)
			sent[c.field] = c.value
			sent[c.output] = tampered
			body, _ := json.Marshal(sent)
			if c.immutable != "" {
				changed := maps.Clone(sent)
				changed[c.immutable] = c.other
				b, _ := json.Marshal(changed)
				details := sys.fails(t, http.MethodPatch, c.path, key, string(b), http.StatusBadRequest, "INVALID_ARGUMENT")
				if d, _ := json.Marshal(details); !strings.Contains(string(d), "cannot update "+c.immutable) {
					t.Errorf("changing %s: details %s, want it named", c.immutable, d)
				}
			}
			details := sys.fails(t, http.MethodPatch, c.path+"?updateMask="+c.output+","+c.field, key, string(body), http.StatusBadRequest, "INVALID_ARGUMENT")
			if d, _ := json.Marshal(details); !strings.Contains(string(d), `"field":"updateMask"`) || !strings.Contains(string(d), "cannot update "+c.output) {
				t.Errorf("an explicit mask naming %s: details %s, want updateMask naming it", c.output, d)
			}
			got := sys.ok(t, http.MethodPatch, c.path, key, string(body))
			if got[c.field] != c.value || got[c.output] == tampered || got["etag"] == read["etag"] ||
				(c.output == "createTime" && got[c.output] != read[c.output]) {
				t.Errorf("sent back with %s=%v: got %s=%v, %s %v (read %v), etag %v (read %v)",
					c.field, c.value, c.field, got[c.field], c.output, got[c.output], read[c.output], got["etag"], read["etag"])
			}
			if again := sys.ok(t, http.MethodGet, c.path, key, ""); again[c.field] != c.value {
				t.Errorf("read again: %s = %v, want %v", c.field, again[c.field], c.value)
			}
			sys.fails(t, http.MethodPatch, c.path, key, string(body), http.StatusConflict, "ABORTED") // the read's etag is stale now
		})
	}

	// updateMask=* replaces the updatable fields: those the body leaves out are cleared; the
	// output-only ones it carries are still ignored.
	account := cases[2].path
	read := sys.ok(t, http.MethodGet, account, key, "")
	replaced := sys.ok(t, http.MethodPatch, account+"?updateMask=*", key,
		fmt.Sprintf(`{"displayName":"Acme Ltd","createTime":"2001-01-01T00:00:00Z","etag":%q}`, str(read, "etag")))
	if str(replaced, "displayName") != "Acme Ltd" || str(replaced, "domain") != "" || str(replaced, "industry") != "" || replaced["createTime"] != read["createTime"] {
		t.Errorf("updateMask=*: got %v, want displayName replaced, domain and industry cleared, createTime %v", replaced, read["createTime"])
	}
	sys.fails(t, http.MethodPatch, account+"?updateMask=*", key, `{"industry":"retail"}`, http.StatusBadRequest, "INVALID_ARGUMENT") // displayName is required
}

// TestReadEditSendBackOverGRPC: the same over gRPC, with no update_mask: the implied mask leaves
// out what the message sets that is output only.
func TestReadEditSendBackOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", allScopes...)
	m, ctx := sys.marketing(key)
	captured, err := m.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc.trip@example.com", Company: "Old Co", Channel: typev1.Channel_CHANNEL_WEB}})
	if err != nil {
		t.Fatal(err)
	}
	read, err := m.GetLead(ctx, &marketingv1.GetLeadRequest{Id: captured.GetLead().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	edited := proto.CloneOf(read.GetLead())
	edited.Company, edited.TouchCount, edited.CustomerId = "New Co", 100, "0192f3a0-0000-7000-8000-000000000001"
	if _, err := m.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: edited, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"touch_count"}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an explicit mask naming touch_count: %v, want INVALID_ARGUMENT", err)
	}
	changed := proto.CloneOf(edited)
	changed.Channel = typev1.Channel_CHANNEL_EMAIL
	if _, err := m.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: changed}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an immutable channel changed: %v, want INVALID_ARGUMENT", err)
	}
	got, err := m.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: edited})
	if err != nil {
		t.Fatalf("the lead read and sent back with company edited: %v", err)
	}
	want := proto.CloneOf(read.GetLead())
	want.Company = "New Co"
	if diff := cmp.Diff(want, got.GetLead(), protocmp.Transform(),
		protocmp.IgnoreFields(&marketingv1.Lead{}, "etag", "update_time", "score", "score_time", "engagement_points")); diff != "" {
		t.Errorf("only company changes (-want +got):\n%s", diff)
	}

	s, ctx := sys.sales(key)
	account, err := s.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{DisplayName: "Acme"}})
	if err != nil {
		t.Fatal(err)
	}
	back := proto.CloneOf(account.GetAccount())
	back.Industry, back.CreateTime = "retail", timestamppb.New(time.Unix(0, 0))
	updated, err := s.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: back})
	if err != nil || updated.GetAccount().GetIndustry() != "retail" || !proto.Equal(updated.GetAccount().GetCreateTime(), account.GetAccount().GetCreateTime()) {
		t.Errorf("the account sent back with industry edited: %v, %v", updated, err)
	}

	catalog := productv1.NewProductServiceClient(sys.grpc)
	productID := str(sys.createProduct(t, key, productBody("GRPC-TRIP", "Round trip", "BILLING_PERIOD_MONTHLY")), "id")
	readProduct, err := catalog.GetProduct(ctx, &productv1.GetProductRequest{Id: productID})
	if err != nil {
		t.Fatal(err)
	}
	product := proto.CloneOf(readProduct.GetProduct())
	product.Description, product.ArchiveTime = "edited", timestamppb.Now()
	if got, err := catalog.UpdateProduct(ctx, &productv1.UpdateProductRequest{Product: product}); err != nil ||
		got.GetProduct().GetDescription() != "edited" || got.GetProduct().GetArchiveTime() != nil {
		t.Errorf("the product sent back with description edited, archive_time set: %v, %v; want it updated, not archived", got, err)
	}

	support := supportv1.NewSupportServiceClient(sys.grpc)
	ticketID := str(sys.ok(t, http.MethodPost, "/v1/tickets", key,
		fmt.Sprintf(`{"customerId":%q,"subject":"Slow","channel":"TICKET_CHANNEL_WEB"}`, captured.GetLead().GetCustomerId())), "id")
	readTicket, err := support.GetTicket(ctx, &supportv1.GetTicketRequest{Id: ticketID})
	if err != nil {
		t.Fatal(err)
	}
	ticket := proto.CloneOf(readTicket.GetTicket())
	ticket.Subject, ticket.Status = "Slower", supportv1.TicketStatus_TICKET_STATUS_CLOSED
	if got, err := support.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: ticket}); err != nil ||
		got.GetTicket().GetSubject() != "Slower" || got.GetTicket().GetStatus() != readTicket.GetTicket().GetStatus() {
		t.Errorf("the ticket sent back with subject edited, status CLOSED: %v, %v; want it updated, its status kept", got, err)
	}
}
