package support_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
	"github.com/crmcycle/crm/services/support/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// clock is a time source the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// entitlements answers from a fixed table; the real product service is tested in cmd/crm.
type entitlements map[string]string

func (e entitlements) Check(_ context.Context, customer, product string) (string, error) {
	if grant, ok := e[customer+"/"+product]; ok {
		return grant, nil
	}
	return "", support.ErrNotEntitled
}

// known stands in for marketing's registry: it has every customer but the ones named.
type known map[string]bool

func (k known) Check(_ context.Context, _, customer, field string) error {
	if k[customer] {
		return customerref.NotFound(field)
	}
	return nil
}

type fixture struct {
	rdb     redis.UniversalClient
	keys    *keyspace.Space
	store   *redisstore.Store
	clock   *clock
	tickets *support.Tickets
	config  *support.Config
	nps     *support.Nps
	stats   *support.Stats
	sweep   *support.Sweep
	tenant  string
}

// t0 is a Monday, 09:00 UTC, on whole seconds.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func setup(t *testing.T) fixture {
	t.Helper()
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	pub := events.Publisher{Producer: "support", Propagator: propagation.TraceContext{}}
	c := &clock{now: t0}
	tickets := support.NewTickets(store, known{}, entitlements{}, pub, v, c.Now)
	return fixture{rdb: rdb, keys: keys, store: store, clock: c, tickets: tickets,
		config: support.NewConfig(store, pub, v, c.Now), nps: support.NewNps(store, known{}, pub, c.Now),
		stats: support.NewStats(store), sweep: support.NewSweep(tickets), tenant: redistest.Tenant(t)}
}

const customer = "0192f3a0-0000-7000-8000-000000000001"

func (f fixture) create(t *testing.T, priority supportv1.TicketPriority) *support.Ticket {
	t.Helper()
	tk, err := f.tickets.Create(context.Background(), f.tenant, &support.Ticket{CustomerId: customer, Subject: "It broke", Priority: priority})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (f fixture) move(t *testing.T, id string, moves ...support.Move) *support.Ticket {
	t.Helper()
	var tk *support.Ticket
	for _, m := range moves {
		var err error
		if tk, err = f.tickets.Move(context.Background(), f.tenant, id, m, ""); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	return tk
}

func (f fixture) get(t *testing.T, id string) *support.Ticket {
	t.Helper()
	tk, err := f.tickets.Get(context.Background(), f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// events decodes the tenant's support events of the given types (all when none), in order.
func (f fixture) events(t *testing.T, types ...string) []*eventv1.Event {
	t.Helper()
	msgs, err := f.rdb.XRange(context.Background(), f.keys.Scope("support", f.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventv1.Event
	for _, m := range msgs {
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() != f.tenant {
			continue
		}
		for _, typ := range types {
			if ev.GetType() == typ {
				out = append(out, ev)
			}
		}
		if len(types) == 0 {
			out = append(out, ev)
		}
	}
	return out
}

func (f fixture) sweepNow(t *testing.T) support.SweepResult {
	t.Helper()
	r, err := f.sweep.Tenant(context.Background(), f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
