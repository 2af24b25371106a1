package integration_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// clock is a controlled clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// sweep runs the retention sweep over every partition and returns how many entries it removed.
func (r *rig) sweep(t *testing.T) int {
	t.Helper()
	n := 0
	for p := range r.store.Partitions() {
		got, err := r.recorder.TrimHistory(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		n += got
	}
	return n
}

// ids lists what one audit-log query (or, with customer set, a timeline) shows.
func (r *rig) ids(t *testing.T, tenant string, by []string, customer string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	if customer != "" {
		p, err := r.history.Timeline(ctx, tenant, customer, page.Request{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			out = append(out, e.GetId())
		}
		return out
	}
	p, err := r.history.Audit(ctx, tenant, integration.AuditQuery{By: by}, page.Request{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Items {
		out = append(out, e.GetId())
	}
	return out
}

// indexMembers reads every sorted set of the tenant's integration keys: key → members.
func indexMembers(t *testing.T, rdb redis.UniversalClient, tenant string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	iter := rdb.Scan(ctx, 0, "crm:*:integration:"+tenant+":*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if typ, _ := rdb.Type(ctx, key).Result(); typ != "zset" {
			continue
		}
		members, err := rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[key] = members
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRetentionSweepUnderAControlledClock records two batches of events a few milliseconds apart,
// then moves the service's clock: 400 days (the default) after the oldest entry nothing goes;
// 400 days after the boundary between the batches the older batch is gone from the audit log, from every
// filter's index, from the timelines (one of them reached through a merge) and from Redis, the
// newer batch intact. A tenant's own shorter retention trims its whole history and no other
// tenant's. Delivery logs are trimmed after 14 days.
func TestRetentionSweepUnderAControlledClock(t *testing.T) {
	// A server of its own: the sweep goes over every tenant of a partition, and the counts below
	// are this test's tenants'.
	rdb := redistest.NewServer(t).Client(t)
	clk := &clock{t: time.Now()}
	r := recorderOn(t, rdb, clk.Now)
	ctx := context.Background()
	tenant, other := redistest.Tenant(t), redistest.Tenant(t)
	if _, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/hook", EventTypes: []string{"sales.*"}}); err != nil {
		t.Fatal(err)
	}
	record := func(ev *eventv1.Event) *eventv1.Event {
		t.Helper()
		if err := r.recorder.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	// Older batch: two customers, one of them merged into the other afterwards.
	var older []string
	for _, ev := range []*eventv1.Event{
		event(t, tenant, "sales.deal.won", "c-survivor", "key-1", "req-old-1"),
		event(t, tenant, "support.ticket.created", "c-merged", "key-1", "req-old-2"),
		event(t, tenant, "sales.deal.won", "c-survivor", "key-2", "req-old-3"),
	} {
		older = append(older, record(ev).GetId())
	}
	otherOld := record(event(t, other, "sales.deal.won", "c-x", "key-9", "req-o-1")).GetId()
	ctxMerge := events.WithCause(ctx, events.ByKey("key-1", "req-merge", "/crm.marketing.v1.MarketingService/MergeCustomers"))
	merge, _, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(ctxMerge,
		marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{SurvivorCustomerId: "c-survivor", MergedCustomerId: "c-merged"}), tenant, "c-survivor", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	older = append(older, record(merge).GetId())
	// Event ids are UUIDv7 of the wall clock: the boundary is the first millisecond after the
	// older batch.
	last := time.UnixMilli(uuidMillis(t, older[len(older)-1]))
	for !time.Now().After(last.Add(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
	boundary := last.Add(time.Millisecond)
	var newer []string
	for _, ev := range []*eventv1.Event{
		event(t, tenant, "sales.deal.won", "c-survivor", "key-1", "req-new-1"),
		event(t, tenant, "support.ticket.created", "c-merged", "key-2", "req-new-2"),
	} {
		newer = append(newer, record(ev).GetId())
	}
	otherNew := record(event(t, other, "sales.deal.won", "c-x", "key-9", "req-o-2")).GetId()
	all := append(append([]string{}, older...), newer...)
	if got := r.ids(t, tenant, nil, ""); len(got) != len(all) {
		t.Fatalf("the audit log has %d entries before any sweep, want %d", len(got), len(all))
	}

	// Delivery logs keep 14 days of the wall clock (delivery ids are UUIDv7); the history stays.
	logged := func() int {
		n := 0
		for key, members := range indexMembers(t, rdb, tenant) {
			if strings.Contains(key, ":deliveries:") {
				n += len(members)
			}
		}
		return n
	}
	clk.Set(time.Now().Add(14*24*time.Hour - time.Minute))
	if n := r.sweep(t); n != 0 || logged() != 3 {
		t.Fatalf("a sweep at 14 days less a minute removed %d entries and left %d logged deliveries, want 0 and 3", n, logged())
	}
	clk.Set(time.Now().Add(14*24*time.Hour + time.Minute))
	if n := r.sweep(t); n != 0 || logged() != 0 {
		t.Fatalf("a sweep after 14 days removed %d entries and left %d logged deliveries, want 0 and none", n, logged())
	}

	// 400 days after the oldest entry's millisecond, nothing is older than the retention yet.
	clk.Set(time.UnixMilli(uuidMillis(t, older[0])).Add(integration.DefaultRetention))
	if n := r.sweep(t); n != 0 {
		t.Fatalf("a sweep before the retention ran out removed %d entries", n)
	}
	if got := r.ids(t, tenant, nil, ""); len(got) != len(all) {
		t.Fatalf("the audit log has %d entries after an early sweep, want %d", len(got), len(all))
	}

	clk.Set(boundary.Add(integration.DefaultRetention))
	if n := r.sweep(t); n != len(older)+1 {
		t.Fatalf("the sweep at 400 days removed %d entries, want the %d older ones of both tenants", n, len(older)+1)
	}
	want := func(ids ...string) []string { s := slices.Clone(ids); slices.Sort(s); slices.Reverse(s); return s }
	checks := []struct {
		name     string
		by       []string
		customer string
		want     []string
	}{
		{"all", nil, "", want(newer...)},
		{"actor key-1", []string{"actor", "key-1"}, "", want(newer[0])},
		{"type sales.deal.won", []string{"type", "sales.deal.won"}, "", want(newer[0])},
		{"request req-old-1", []string{"request", "req-old-1"}, "", nil},
		{"request req-new-2", []string{"request", "req-new-2"}, "", want(newer[1])},
		{"survivor's timeline", nil, "c-survivor", want(newer...)},
		{"merged customer's timeline", nil, "c-merged", want(newer...)},
	}
	for _, c := range checks {
		if got := r.ids(t, tenant, c.by, c.customer); !slices.Equal(got, c.want) {
			t.Errorf("%s after the sweep: %v, want %v", c.name, got, c.want)
		}
	}
	if got := r.ids(t, other, nil, ""); !slices.Equal(got, []string{otherNew}) {
		t.Errorf("the other tenant's audit log: %v, want only %s (not %s)", got, otherNew, otherOld)
	}
	// In Redis: no index lists an older id, no older entry is left.
	for key, members := range indexMembers(t, rdb, tenant) {
		if strings.Contains(key, ":deliveries:") {
			continue
		}
		for _, id := range older {
			if slices.Contains(members, id) {
				t.Errorf("%s still lists %s", key, id)
			}
		}
	}
	for _, id := range older {
		if n, _ := rdb.Exists(ctx, redisstore.EntryKey(r.store.Scope(tenant), id)).Result(); n != 0 {
			t.Errorf("entry %s is still stored", id)
		}
	}

	// The tenant's own retention: 30 days trims its whole history, not the other tenant's.
	if _, err := r.settings.Update(ctx, tenant, &integrationv1.IntegrationSettings{AuditRetentionDays: proto.Int32(30)},
		&fieldmaskpb.FieldMask{Paths: []string{"audit_retention_days"}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Now().Add(30*24*time.Hour + time.Minute))
	// The settings change is itself an integration event, not recorded here (nothing consumes
	// the stream in this test): the sweep removes the newer batch only.
	if n := r.sweep(t); n != len(newer) {
		t.Fatalf("the sweep at 30 days removed %d entries, want the tenant's %d", n, len(newer))
	}
	if got := r.ids(t, tenant, nil, ""); len(got) != 0 {
		t.Errorf("the audit log after its 30 days: %v, want nothing", got)
	}
	if got := r.ids(t, other, nil, ""); !slices.Equal(got, []string{otherNew}) {
		t.Errorf("the other tenant's audit log after the first's 30 days: %v, want %s", got, otherNew)
	}
	for key, members := range indexMembers(t, rdb, tenant) {
		// Lanes queue the pending deliveries (no dispatcher runs here), not the history.
		if key != redisstore.EndpointsKey(r.store.Scope(tenant)) && !strings.Contains(key, ":lane:") {
			t.Errorf("%s is left with %v after the whole history was trimmed", key, members)
		}
	}
}

// uuidMillis is the Unix milliseconds of a UUIDv7.
func uuidMillis(t *testing.T, id string) int64 {
	t.Helper()
	hex := strings.ReplaceAll(id, "-", "")[:12]
	var ms int64
	for _, c := range hex {
		ms <<= 4
		switch {
		case c >= '0' && c <= '9':
			ms |= int64(c - '0')
		case c >= 'a' && c <= 'f':
			ms |= int64(c-'a') + 10
		default:
			t.Fatalf("%s is not a UUID", id)
		}
	}
	return ms
}

// TestASweptEntryStillGuardsItsEvent: a history entry is its event's redelivery guard. A tenant
// whose retention (1 day) is shorter than the time an event may still be redelivered
// (events.SeenTTL) has entries swept before then: the sweep leaves a marker until the event is
// SeenTTL old, so a redelivery records nothing again (no entry, no second delivery); an entry
// swept once its event is SeenTTL old leaves none.
func TestASweptEntryStillGuardsItsEvent(t *testing.T) {
	rdb := redistest.NewServer(t).Client(t)
	clk := &clock{t: time.Now()}
	r := recorderOn(t, rdb, clk.Now)
	ctx := context.Background()
	tenant := redistest.Tenant(t)
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/hook", EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.settings.Update(ctx, tenant, &integrationv1.IntegrationSettings{AuditRetentionDays: proto.Int32(1)},
		&fieldmaskpb.FieldMask{Paths: []string{"audit_retention_days"}}); err != nil {
		t.Fatal(err)
	}
	young := event(t, tenant, "sales.deal.won", "c-1", "key-1", "req-1")
	if err := r.recorder.Record(ctx, young); err != nil {
		t.Fatal(err)
	}
	sc := r.store.Scope(tenant)
	marker := redisstore.MarkerKey(sc, young.GetId())
	if n, _ := rdb.Exists(ctx, marker).Result(); n != 0 {
		t.Fatalf("recording an event with a history entry wrote a marker besides")
	}

	clk.Set(time.UnixMilli(uuidMillis(t, young.GetId())).Add(2 * 24 * time.Hour))
	if n := r.sweep(t); n != 1 {
		t.Fatalf("the sweep 2 days on removed %d entries, want 1", n)
	}
	ttl, err := rdb.TTL(ctx, marker).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := events.SeenTTL - 2*24*time.Hour; ttl < left-time.Minute || ttl > left+time.Minute {
		t.Fatalf("the swept entry's marker lives %v, want about %v (until the event is %v old)", ttl, left, events.SeenTTL)
	}
	if err := r.recorder.Record(ctx, young); err != nil { // redelivered
		t.Fatal(err)
	}
	if got := r.ids(t, tenant, nil, ""); len(got) != 0 {
		t.Errorf("the redelivered event is back in the audit log: %v", got)
	}
	if got := r.deliveriesOf(t, tenant, ep.GetId()); len(got) != 1 {
		t.Errorf("the endpoint has %d deliveries after the redelivery, want the first one only", len(got))
	}

	old := event(t, tenant, "sales.deal.won", "c-2", "key-1", "req-2")
	if err := r.recorder.Record(ctx, old); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.UnixMilli(uuidMillis(t, old.GetId())).Add(events.SeenTTL + time.Minute))
	if n := r.sweep(t); n != 1 {
		t.Fatalf("the sweep %v on removed %d entries, want 1", events.SeenTTL, n)
	}
	if n, _ := rdb.Exists(ctx, redisstore.MarkerKey(sc, old.GetId())).Result(); n != 0 {
		t.Errorf("an entry swept after its event is %v old left a marker", events.SeenTTL)
	}
}
