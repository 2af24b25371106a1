package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/product/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func productService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// clock is the services' time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// TestServiceWiring builds the service as a process does and checks what the process relies on:
// its name, its gRPC service registered and SERVING, a call answered through the interceptors,
// and its consumer of sales orders subscribed and handling them.
func TestServiceWiring(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{productService}})
	svc := suite.Services[0]
	if svc.Name() != "product" {
		t.Errorf("Name() = %q, want product", svc.Name())
	}
	reactor, ok := svc.(platform.Reactor)
	if !ok {
		t.Fatal("product is not a platform.Reactor")
	}
	subs := reactor.Subscriptions()
	if len(subs) != 2 || subs[0].Group != "product" || subs[0].Producer != "sales" || subs[0].Handle == nil ||
		subs[1].Group != "product" || subs[1].Producer != "marketing" || subs[1].Handle == nil {
		t.Fatalf("subscriptions = %+v, want group product on sales' stream (orders) and marketing's (merges)", subs)
	}
	if _, ok := svc.(platform.Background); !ok {
		t.Error("product is not a platform.Background")
	}
	waitServing(t, suite, productv1.ProductService_ServiceDesc.ServiceName)

	tenant, key := suite.NewKey(t, "", "product.read", "product.write")
	client := productv1.NewProductServiceClient(suite.Conn)
	ctx := servicetest.WithKey(context.Background(), key)
	p := createProduct(t, ctx, client)
	customer := uuid.NewString()
	placeOrder(t, suite, tenant, customer, time.Now(), p)
	sub := waitSubscription(t, ctx, client, customer, func(*productv1.Subscription) bool { return true })
	if sub.GetProductId() != p.GetId() || sub.GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE {
		t.Fatalf("subscription from the order = %v, want an active one to %s", sub, p.GetId())
	}
}

// TestBackgroundRenews: with its background work on, the service renews a subscription whose
// period has ended without anyone calling SweepRenewals.
func TestBackgroundRenews(t *testing.T) {
	placed := time.Now().UTC()
	c := &clock{now: placed}
	// The first suite takes the order; the second, a month and a day later, sweeps on start.
	first := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{productService}, Now: c.Now})
	tenant, key := first.NewKey(t, "", "product.read", "product.write")
	client := productv1.NewProductServiceClient(first.Conn)
	ctx := servicetest.WithKey(context.Background(), key)
	p := createProduct(t, ctx, client)
	customer := uuid.NewString()
	placeOrder(t, first, tenant, customer, placed, p)
	waitSubscription(t, ctx, client, customer, func(*productv1.Subscription) bool { return true })

	c.Set(placed.AddDate(0, 1, 1))
	servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{productService}, Now: c.Now, Background: true})
	sub := waitSubscription(t, ctx, client, customer, func(s *productv1.Subscription) bool { return s.GetRenewalCount() > 0 })
	if sub.GetRenewalCount() != 1 || !sub.GetCurrentPeriodEndTime().AsTime().After(c.Now()) {
		t.Fatalf("renewed subscription = %v, want one renewal into a period that has not ended", sub)
	}
	if n := len(first.Events(t, "product", tenant, "product.subscription.renewed")); n != 1 {
		t.Fatalf("%d renewed events, want 1", n)
	}
}

// waitServing polls the health service until service is SERVING (it is once Redis answers).
func waitServing(t *testing.T, suite *servicetest.Suite, service string) {
	t.Helper()
	health := healthpb.NewHealthClient(suite.Conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %s: %v, %v after 10s, want SERVING", service, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createProduct(t *testing.T, ctx context.Context, client productv1.ProductServiceClient) *productv1.Product {
	t.Helper()
	r, err := client.CreateProduct(ctx, &productv1.CreateProductRequest{Product: &productv1.Product{
		Sku: "M", DisplayName: "Monthly", BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY,
		Price: &typev1.Money{CurrencyCode: "EUR", Units: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetProduct()
}

// placeOrder appends a "sales.order.placed" envelope for one seat of p to the sales stream of the
// tenant's partition, as the sales service does.
func placeOrder(t *testing.T, suite *servicetest.Suite, tenant, customer string, at time.Time, p *productv1.Product) {
	t.Helper()
	ctx := context.Background()
	order := &salesv1.Order{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer,
		Lines: []*salesv1.OrderLine{{ProductId: p.GetId(), Quantity: 1, Recurring: true}}}
	_, data, err := events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}.
		Envelope(ctx, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: order}), tenant, customer, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.New().Append(suite.Deps.Keys.Scope("sales", tenant).Stream(), data).Run(ctx, suite.Redis); err != nil {
		t.Fatal(err)
	}
}

// waitSubscription polls the customer's subscriptions until one satisfies ok.
func waitSubscription(t *testing.T, ctx context.Context, client productv1.ProductServiceClient, customer string, ok func(*productv1.Subscription) bool) *productv1.Subscription {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: the order crosses the bus on a loaded machine
	for {
		r, err := client.ListSubscriptions(ctx, &productv1.ListSubscriptionsRequest{Filter: `customer_id = "` + customer + `"`})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.GetSubscriptions() {
			if ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions of %s: %v after 30s", customer, r.GetSubscriptions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
