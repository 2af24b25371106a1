package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func marketingService(d platform.Deps) (platform.Service, error) { return server.New(d) }

func TestServesMarketingAndSubscribesToTheOtherServices(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}})
	svc := suite.Services[0]
	if got, want := svc.Name(), "marketing"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}

	// The gRPC service is registered: it has a health status of its own, SERVING once Redis answers.
	health := healthpb.NewHealthClient(suite.Conn)
	name := marketingv1.MarketingService_ServiceDesc.ServiceName
	eventually(t, name+" SERVING", func() (bool, string) {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: name})
		return r.GetStatus() == healthpb.HealthCheckResponse_SERVING, fmt.Sprint(r.GetStatus(), err)
	})
	_, key := suite.NewKey(t, "", "marketing.read")
	rules, err := marketingv1.NewMarketingServiceClient(suite.Conn).GetScoringRules(
		servicetest.WithKey(context.Background(), key), &marketingv1.GetScoringRulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rules.GetScoringRules().GetMqlThreshold(), int32(50); got != want {
		t.Errorf("a new tenant's MQL threshold = %d, want the default %d", got, want)
	}

	reactor, ok := svc.(platform.Reactor)
	if !ok {
		t.Fatal("marketing is not a platform.Reactor")
	}
	var subs []string
	for _, s := range reactor.Subscriptions() {
		if s.Handle == nil {
			t.Errorf("subscription to %s has no handler", s.Producer)
		}
		subs = append(subs, s.Group+" <- "+s.Producer)
	}
	want := []string{"marketing <- sales", "marketing <- product", "marketing <- support", "marketing <- marketing"}
	if diff := cmp.Diff(want, subs); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
}

// TestReactsToEachProducer publishes, on each producer's own stream as the producer would, an
// event that moves a customer's lifecycle, and waits for marketing's consumer to apply it.
func TestReactsToEachProducer(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}})
	tenant, customer, client := capturedCustomer(t, suite)
	sub := &productv1.Subscription{Id: uuid.NewString(), CustomerId: customer}
	for _, step := range []struct {
		producer string
		event    eventv1.Body
		want     marketingv1.LifecycleStage
	}{
		{"sales", salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: uuid.NewString(), CustomerId: customer,
			CurrencyCode: "EUR", Total: &typev1.Money{CurrencyCode: "EUR", Units: 10}}}), marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER},
		{"product", productv1.EventSubscriptionActivated.Of(&productv1.SubscriptionChanged{CustomerId: customer, Subscription: sub}),
			marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT},
		{"support", supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{CustomerId: customer, Score: 10}),
			marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE},
	} {
		publish(t, suite, step.producer, step.event, tenant, customer, time.Now())
		eventually(t, step.event.Type()+"'s move to "+step.want.String(), func() (bool, string) {
			lc := client.lifecycle(t, customer)
			return lc.GetStage() == step.want, lc.GetStage().String()
		})
	}
}

// TestBackgroundChurnsCustomersAfterTheWindow runs the service's background work over a customer
// whose only subscription was canceled longer than the churn window ago.
func TestBackgroundChurnsCustomersAfterTheWindow(t *testing.T) {
	// The sweep runs when the background work starts, then once a minute: the first suite, without
	// it, reacts to the cancellation; the second, with it, sweeps.
	reacting := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}})
	tenant, customer, client := capturedCustomer(t, reacting)
	sub := &productv1.Subscription{Id: uuid.NewString(), CustomerId: customer}
	canceled := time.Now()
	publish(t, reacting, "product", productv1.EventSubscriptionActivated.Of(&productv1.SubscriptionChanged{CustomerId: customer, Subscription: sub}),
		tenant, customer, canceled.Add(-time.Hour))
	publish(t, reacting, "product", productv1.EventSubscriptionCanceled.Of(&productv1.SubscriptionChanged{CustomerId: customer, Subscription: sub}),
		tenant, customer, canceled)
	eventually(t, "the cancellation's risk", func() (bool, string) {
		lc := client.lifecycle(t, customer)
		return lc.GetStage() == marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER && lc.GetAtRisk(), fmt.Sprint(lc)
	})

	later := time.Now().Add(marketing.DefaultChurnWindow + time.Hour)
	servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}, Background: true,
		Now: func() time.Time { return later }})
	eventually(t, "the churn", func() (bool, string) {
		lc := client.lifecycle(t, customer)
		return lc.GetStage() == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED, lc.GetStage().String()
	})
}

// lifecycleClient reads lifecycles with one tenant's key.
type lifecycleClient struct {
	marketing marketingv1.MarketingServiceClient
	ctx       context.Context
}

func (c lifecycleClient) lifecycle(t *testing.T, customer string) *marketingv1.CustomerLifecycle {
	t.Helper()
	r, err := c.marketing.GetCustomerLifecycle(c.ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetLifecycle()
}

// capturedCustomer captures a lead in a new tenant and returns the tenant, the lead's customer (a
// PROSPECT) and a client of the tenant.
func capturedCustomer(t *testing.T, suite *servicetest.Suite) (string, string, lifecycleClient) {
	t.Helper()
	tenant, key := suite.NewKey(t, "", "marketing.read", "marketing.write")
	c := lifecycleClient{marketing: marketingv1.NewMarketingServiceClient(suite.Conn), ctx: servicetest.WithKey(context.Background(), key)}
	lead, err := c.marketing.CaptureLead(c.ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "cycle@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return tenant, lead.GetLead().GetCustomerId(), c
}

// publish appends an event to the producer's stream for the tenant, as the producer's outbox does.
func publish(t *testing.T, suite *servicetest.Suite, producer string, event eventv1.Body, tenant, customer string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	pub := events.Publisher{Producer: producer, Propagator: suite.Telemetry.Propagator}
	_, data, err := pub.Envelope(ctx, event, tenant, customer, at)
	if err != nil {
		t.Fatal(err)
	}
	stream := suite.Deps.Keys.Scope(producer, tenant).Stream()
	if err := suite.Redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"e", data}}).Err(); err != nil {
		t.Fatal(err)
	}
}

// eventually polls check until it holds or the deadline passes: reactions run on the bus.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen; last state: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A capture's round trips to Redis on the request path, as a running process counts them
// (redisconn.RequestRoundTrips on crm's /metrics, which `make bench` reads): one for a new lead;
// for a known one two the first time this process sees it (the refused create brings the lead
// back, then its touch) and one after (the touch against the lead as the process wrote it), three
// when another write moved it on meanwhile; while
// marketing's reactions to the captures (the consumer's reads and acknowledgements, the lifecycle
// read of each lead.captured) go out on the same client and are not counted.
func TestCaptureRoundTripsOnTheRequestPath(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL()},
		sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	sent := &redistest.Commands{}
	rdb.AddHook(sent)
	onPath := &redistest.Commands{Only: func(ctx context.Context) bool { _, ok := grpc.Method(ctx); return ok }}
	rdb.AddHook(onPath)
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService},
		Redis: rdb, AuthCacheTTL: time.Hour})
	tenant, key := suite.NewKey(t, "", "marketing.write")
	client, ctx := marketingv1.NewMarketingServiceClient(suite.Conn), servicetest.WithKey(context.Background(), key)
	capture := func(email string) *marketingv1.Lead {
		t.Helper()
		r, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: email}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetLead()
	}
	trips := func() int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != redisconn.RequestRoundTrips {
					continue
				}
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					if method, _ := p.Attributes.Value("rpc.method"); method.AsString() == "CaptureLead" {
						n += p.Value
					}
				}
			}
		}
		return n
	}
	// drained waits until marketing's consumer has handled every event of the tenant's stream.
	stream := suite.Deps.Keys.Scope("marketing", tenant).Stream()
	drained := func() {
		t.Helper()
		eventually(t, "marketing's reactions to the captures", func() (bool, string) {
			groups, err := rdb.XInfoGroups(context.Background(), stream).Result()
			if err != nil {
				return false, err.Error()
			}
			for _, g := range groups {
				if g.Name == "marketing" {
					return g.Pending == 0 && g.Lag == 0, fmt.Sprintf("pending %d, lag %d", g.Pending, g.Lag)
				}
			}
			return false, fmt.Sprintf("no marketing group in %v", groups)
		})
	}

	capture("warm@example.com") // the key's lookup, the scoring rules, the script's load
	drained()
	before := trips()
	sent.Take()
	onPath.Take()
	const n = 20
	for i := range n {
		capture(fmt.Sprintf("trips-%d@example.com", i))
	}
	drained()
	if got := trips() - before; got != n {
		t.Errorf("%d new-lead captures made %d round trips on the request path, want %d: %v", n, got, n, onPath.Take())
	}
	all := sent.Take()
	if c := slices.Index(all, "xreadgroup"); c < 0 || len(all) <= n {
		t.Errorf("the client sent %d commands (%v) during the captures, want the reactions' reads beside the %d writes", len(all), all, n)
	}

	before = trips()
	var warm *marketingv1.Lead
	for range n {
		warm = capture("WARM@example.com")
	}
	drained()
	if got := trips() - before; got != n+1 {
		t.Errorf("%d known-lead captures made %d round trips on the request path, want %d", n, got, n+1)
	}

	updated, err := client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: warm.GetId(), Company: "Moved On"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"company"}}})
	if err != nil {
		t.Fatal(err)
	}
	before = trips()
	touched := capture("warm@example.com")
	if got := trips() - before; got != 3 {
		t.Errorf("a capture of a lead another write moved on made %d round trips, want 3", got)
	}
	if touched.GetCompany() != "Moved On" || touched.GetTouchCount() != warm.GetTouchCount()+1 || touched.GetEtag() != etag.Next(updated.GetLead().GetEtag()) {
		t.Errorf("the capture after the update: company %q, touches %d, etag %s; want the update's company, %d touches, etag %s",
			touched.GetCompany(), touched.GetTouchCount(), touched.GetEtag(), warm.GetTouchCount()+1, etag.Next(updated.GetLead().GetEtag()))
	}

	// Erasing the lead drops it from the process's recent leads: the e-mail captured again is a
	// new lead, in one round trip (no touch tried against the erased one first).
	if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: warm.GetId()}); err != nil {
		t.Fatal(err)
	}
	before = trips()
	if again := capture("warm@example.com"); again.GetId() == warm.GetId() || again.GetTouchCount() != 1 {
		t.Errorf("the capture after the erasure: lead %s with %d touches, want a new lead", again.GetId(), again.GetTouchCount())
	}
	if got := trips() - before; got != 1 {
		t.Errorf("the capture after the erasure made %d round trips, want 1", got)
	}
}
