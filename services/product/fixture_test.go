package product_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/product"
	"github.com/crmcycle/crm/services/product/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// clock is the controlled time of a fixture.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// fixture is the product use cases over the real Redis store, for one fresh tenant, on a
// controlled clock.
type fixture struct {
	tenant  string
	rdb     redis.UniversalClient
	keys    *keyspace.Space
	clock   *clock
	catalog *product.Catalog
	subs    *product.Subscriptions
	// onSales handles a sales event as the service's subscription does.
	onSales events.Handler
	usage   *product.Usage
	recs    *product.Recommendations
}

var start = time.Date(2026, time.January, 31, 9, 30, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, redistest.Client(t))
}

func newFixtureOn(t *testing.T, rdb redis.UniversalClient) *fixture {
	t.Helper()
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	validator, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	publisher := events.Publisher{Producer: "product", Propagator: propagation.TraceContext{}}
	c := &clock{now: start}
	subs := product.NewSubscriptions(store, store, publisher, c.Now)
	return &fixture{
		tenant: redistest.Tenant(t), rdb: rdb, keys: keys, clock: c,
		catalog: product.NewCatalog(store, publisher, validator, c.Now),
		subs:    subs,
		onSales: events.Subscribe("product", events.On(salesv1.EventOrderPlaced, subs.OnOrderPlaced))[0].Handle,
		usage:   product.NewUsage(store, store, store, publisher, c.Now),
		recs:    product.NewRecommendations(store, store),
	}
}

type productSpec struct {
	sku      string
	period   productv1.BillingPeriod
	line     string
	tier     int32
	features []string
}

func (f *fixture) product(t *testing.T, spec productSpec) *product.Product {
	t.Helper()
	p, err := f.catalog.Create(context.Background(), f.tenant, &product.Product{
		Sku: spec.sku, DisplayName: spec.sku, BillingPeriod: spec.period, ProductLine: spec.line, Tier: spec.tier,
		Features: spec.features, Price: &typev1.Money{CurrencyCode: "EUR", Units: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// orderEvent is a "sales.order.placed" envelope as the sales service stamps it.
func (f *fixture) orderEvent(t *testing.T, customer string, lines ...*salesv1.OrderLine) *eventv1.Event {
	t.Helper()
	order := &salesv1.Order{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Lines: lines}
	ev, _, err := events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}.Envelope(
		context.Background(), salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: order}), f.tenant, customer, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func line(p *product.Product, quantity int64) *salesv1.OrderLine {
	return &salesv1.OrderLine{ProductId: p.GetId(), Quantity: quantity, Recurring: product.Recurring(p.GetBillingPeriod())}
}

func (f *fixture) subscriptionsOf(t *testing.T, customer string) []*product.Subscription {
	t.Helper()
	subs, err := f.subs.List(context.Background(), f.tenant, product.SubscriptionQuery{
		Index: product.SubscriptionIndex{CustomerID: customer}, Request: page.Request{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	return subs.Items
}

// entitlementsOf lists a customer's one-time entitlements.
func (f *fixture) entitlementsOf(t *testing.T, customer string) []*product.Entitlement {
	t.Helper()
	ents, err := f.subs.Entitlements(context.Background(), f.tenant, customer, page.Request{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ents.Items
}

// grantsOf lists a customer's subscriptions and one-time entitlements, by id.
func (f *fixture) grantsOf(t *testing.T, customer string) []string {
	t.Helper()
	var ids []string
	for _, s := range f.subscriptionsOf(t, customer) {
		ids = append(ids, s.GetId())
	}
	for _, e := range f.entitlementsOf(t, customer) {
		ids = append(ids, e.GetId())
	}
	return ids
}

// eventTypes counts the tenant's product events by type, across the partition's stream.
func (f *fixture) eventTypes(t *testing.T) map[string]int {
	t.Helper()
	msgs, err := f.rdb.XRange(context.Background(), f.keys.Scope("product", f.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range msgs {
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() == f.tenant {
			out[ev.GetType()]++
		}
	}
	return out
}
