package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// numbered is one recorded delivery as a receiver would see it.
type numbered struct {
	Event, Customer, BodyCustomer string
	Sequence                      int64
}

// deliveriesOf reads every delivery recorded for an endpoint, by event id.
func (r *rig) deliveriesOf(t *testing.T, tenant, endpoint string) map[string]numbered {
	t.Helper()
	ctx := context.Background()
	ids, err := r.store.Redis().ZRange(ctx, redisstore.DeliveryLogKey(r.store.Scope(tenant), endpoint), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]numbered{}
	for _, id := range ids {
		d, err := r.store.ReadDelivery(ctx, tenant, id)
		if err != nil || d == nil {
			t.Fatalf("delivery %s: %v %v", id, d, err)
		}
		var body struct {
			Sequence int64  `json:"sequence"`
			Customer string `json:"customerId"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatalf("delivery %s body %q: %v", id, d.Body, err)
		}
		if body.Sequence != d.Delivery.GetSequence() {
			t.Errorf("delivery %s: body sequence %d, record %d", id, body.Sequence, d.Delivery.GetSequence())
		}
		if _, dup := out[d.Delivery.GetEventId()]; dup {
			t.Errorf("event %s has two deliveries to %s", d.Delivery.GetEventId(), endpoint)
		}
		out[d.Delivery.GetEventId()] = numbered{Event: d.Delivery.GetEventId(), Customer: d.Delivery.GetCustomerId(),
			BodyCustomer: body.Customer, Sequence: body.Sequence}
	}
	return out
}

// countFields lists every field of the tenant's sequence hashes (the endpoints' and the older
// versions' one, not an erased customer's last numbers), as "<key> <field>".
func countFields(t *testing.T, rdb redis.UniversalClient, tenant string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, pattern := range []string{"crm:*:integration:" + tenant + ":endpoint:*:sequences", "crm:*:integration:" + tenant + ":sequences"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			fields, err := rdb.HKeys(ctx, iter.Val()).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fields {
				out = append(out, iter.Val()+" "+f)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mergeEvent(t testing.TB, tenant, survivor, merged string) *eventv1.Event {
	t.Helper()
	ctx := events.WithCause(context.Background(), events.ByKey("key-1", "req-merge", "/crm.marketing.v1.MarketingService/MergeCustomers"))
	ev, _, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(ctx,
		marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged}), tenant, survivor, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func erasedEvent(t testing.TB, tenant, customer string) *eventv1.Event {
	t.Helper()
	ev, _, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(context.Background(),
		marketingv1.EventCustomerErased.Of(&marketingv1.CustomerErased{CustomerId: customer}), tenant, customer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestErasureAndMergeDropTheCustomersCounts records deliveries to two endpoints for four
// customers, then erases one and merges another into a third. Afterwards the sequence hashes hold
// no field of the erased or the merged customer (a late event about the erased one counts on from
// its last numbers, kept aside with an expiry), the survivor's count goes on from its own last
// number (the merge event and a late event about the merged id take the next ones, in the
// survivor's count and naming it), and deleting an endpoint deletes its counts. Every number is
// checked against a count the test keeps itself.
func TestErasureAndMergeDropTheCustomersCounts(t *testing.T) {
	rdb := redistest.Client(t)
	r := recorderOn(t, rdb, time.Now)
	tenant := redistest.Tenant(t)
	ctx := context.Background()
	all, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/all"})
	if err != nil {
		t.Fatal(err)
	}
	sales, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/sales", EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	// want[endpoint][event] is the delivery the test expects: the customer whose count it takes
	// and its number there.
	want := map[string]map[string]numbered{all.GetId(): {}, sales.GetId(): {}}
	counts := map[string]int64{}
	record := func(ev *eventv1.Event, countOf string) {
		t.Helper()
		if err := r.recorder.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		for _, ep := range []*integrationv1.WebhookEndpoint{all, sales} {
			if len(ep.GetEventTypes()) > 0 && !strings.HasPrefix(ev.GetType(), "sales.") {
				continue
			}
			key := ep.GetId() + "|" + countOf
			counts[key]++
			want[ep.GetId()][ev.GetId()] = numbered{Event: ev.GetId(), Customer: countOf, BodyCustomer: countOf, Sequence: counts[key]}
		}
	}
	for i := range 3 {
		for _, c := range []string{"c-erased", "c-merged", "c-survivor", "c-other"} {
			record(event(t, tenant, "sales.deal.won", c, "key-1", fmt.Sprintf("req-%s-%d", c, i)), c)
		}
	}
	record(event(t, tenant, "marketing.lead.scored", "", "key-1", "req-none"), "")
	if n := len(countFields(t, rdb, tenant)); n != 9 {
		t.Fatalf("%d count fields before, want 9 (4 customers at 2 endpoints, and the all endpoint's events without a customer): %v", n, countFields(t, rdb, tenant))
	}

	record(erasedEvent(t, tenant, "c-erased"), "c-erased") // its last number: 4 at the all endpoint
	// A write that raced the erasure: its event, recorded after it, counts on (5 and 4).
	record(event(t, tenant, "sales.deal.won", "c-erased", "key-1", "req-raced"), "c-erased")
	record(mergeEvent(t, tenant, "c-survivor", "c-merged"), "c-survivor")
	// A late event about the merged id counts on in the survivor's count, and so does the survivor's own.
	record(event(t, tenant, "sales.deal.won", "c-merged", "key-1", "req-late"), "c-survivor")
	record(event(t, tenant, "sales.deal.won", "c-survivor", "key-1", "req-after"), "c-survivor")
	record(event(t, tenant, "sales.deal.won", "c-other", "key-1", "req-other"), "c-other")

	for _, ep := range []*integrationv1.WebhookEndpoint{all, sales} {
		got := r.deliveriesOf(t, tenant, ep.GetId())
		if len(got) != len(want[ep.GetId()]) {
			t.Errorf("%s: %d deliveries, want %d", ep.GetUrl(), len(got), len(want[ep.GetId()]))
		}
		for id, w := range want[ep.GetId()] {
			if got[id] != w {
				t.Errorf("%s: event %s delivered as %+v, want %+v", ep.GetUrl(), id, got[id], w)
			}
		}
	}
	if counts[all.GetId()+"|c-survivor"] != 6 || counts[sales.GetId()+"|c-survivor"] != 5 {
		t.Fatalf("the test's own count of the survivor: %v", counts) // 3 own + merge (all only) + late + after
	}
	fields := countFields(t, rdb, tenant)
	for _, f := range fields {
		if strings.HasSuffix(f, " c-erased") || strings.HasSuffix(f, " c-merged") {
			t.Errorf("count left behind: %s", f)
		}
	}
	if len(fields) != 5 {
		t.Errorf("count fields after: %v, want the survivor's and c-other's at both endpoints and the all endpoint's empty customer", fields)
	}
	// The erased customer's last numbers are kept aside only as long as a delivery is.
	erased := redisstore.ErasedSequencesKey(r.store.Scope(tenant), "c-erased")
	if ttl := rdb.PTTL(ctx, erased).Val(); ttl <= 13*24*time.Hour || ttl > 14*24*time.Hour {
		t.Errorf("%s expires in %v, want the 14 days a delivery is kept", erased, ttl)
	}

	if err := r.endpoints.Delete(ctx, tenant, sales.GetId(), ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range countFields(t, rdb, tenant) {
		if strings.Contains(f, sales.GetId()) {
			t.Errorf("the deleted endpoint's count is left: %s", f)
		}
	}
}

// TestMergeRacingTheMergedCustomersEvents records a merge while other goroutines record events
// about the merged customer and the survivor. Whatever the interleaving, each event has exactly
// one delivery; the merged customer's numbers (those recorded before the merge) and the
// survivor's (its own, the merge's and the merged id's later ones) are each 1..n without a gap;
// no count of the merged customer is left, and the survivor's next number follows its last.
func TestMergeRacingTheMergedCustomersEvents(t *testing.T) {
	rdb := redistest.Client(t)
	r := recorderOn(t, rdb, time.Now)
	tenant := redistest.Tenant(t)
	ctx := context.Background()
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/all"})
	if err != nil {
		t.Fatal(err)
	}
	const each = 40
	var evs []*eventv1.Event
	for i := range each {
		evs = append(evs, event(t, tenant, "sales.deal.won", "c-merged", "key-1", fmt.Sprintf("req-m-%d", i)),
			event(t, tenant, "support.ticket.created", "c-survivor", "key-1", fmt.Sprintf("req-s-%d", i)))
	}
	merge := mergeEvent(t, tenant, "c-survivor", "c-merged")
	// A few of each before the merge starts, the rest side by side with it.
	for _, ev := range evs[:6] {
		if err := r.recorder.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(evs))
	var merged, survivor []*eventv1.Event // evs alternate between the two customers
	for i, ev := range evs[6:] {
		if i%2 == 0 {
			merged = append(merged, ev)
		} else {
			survivor = append(survivor, ev)
		}
	}
	// The merge starts once the merged customer's lane is a quarter through, and races the rest.
	quarter := make(chan struct{})
	wg.Add(3)
	go func() {
		defer wg.Done()
		<-quarter
		errs <- r.recorder.Record(ctx, merge)
	}()
	go func() {
		defer wg.Done()
		for i, ev := range merged {
			if i == len(merged)/4 {
				close(quarter)
			}
			errs <- r.recorder.Record(ctx, ev)
		}
	}()
	go func() {
		defer wg.Done()
		for _, ev := range survivor {
			errs <- r.recorder.Record(ctx, ev)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	last := event(t, tenant, "sales.deal.won", "c-survivor", "key-1", "req-last")
	if err := r.recorder.Record(ctx, last); err != nil {
		t.Fatal(err)
	}

	got := r.deliveriesOf(t, tenant, ep.GetId())
	if len(got) != len(evs)+2 {
		t.Fatalf("%d deliveries, want %d (one per event)", len(got), len(evs)+2)
	}
	numbers := map[string]map[int64]bool{}
	for _, d := range got {
		if numbers[d.Customer] == nil {
			numbers[d.Customer] = map[int64]bool{}
		}
		if numbers[d.Customer][d.Sequence] {
			t.Errorf("%s: number %d given twice", d.Customer, d.Sequence)
		}
		numbers[d.Customer][d.Sequence] = true
		if d.BodyCustomer != d.Customer {
			t.Errorf("delivery of %s: the body names %q, the record %q", d.Event, d.BodyCustomer, d.Customer)
		}
	}
	if len(numbers) != 2 || len(numbers["c-merged"])+len(numbers["c-survivor"]) != len(evs)+2 {
		t.Fatalf("counts: %v", numbers)
	}
	for c, seen := range numbers {
		for i := int64(1); i <= int64(len(seen)); i++ {
			if !seen[i] {
				t.Errorf("%s's numbers %v miss %d", c, seen, i)
			}
		}
	}
	if g := got[last.GetId()]; g.Sequence != int64(len(numbers["c-survivor"])) || g.Customer != "c-survivor" {
		t.Errorf("the survivor's event after the race: %+v, want its number %d", g, len(numbers["c-survivor"]))
	}
	if g := got[merge.GetId()]; g.Customer != "c-survivor" {
		t.Errorf("the merge event counted as %+v", g)
	}
	t.Logf("merged customer's deliveries before the merge: %d; survivor's: %d", len(numbers["c-merged"]), len(numbers["c-survivor"]))
	for _, f := range countFields(t, rdb, tenant) {
		if strings.HasSuffix(f, " c-merged") {
			t.Errorf("count left behind: %s", f)
		}
	}
}

// TestCountsOfAnOlderVersionGoOn: a count kept in the older single hash (fields
// "<endpoint>|<customer>") goes on from its number on the customer's next delivery and leaves that
// hash; an erasure removes the erased customer's old fields too.
func TestCountsOfAnOlderVersionGoOn(t *testing.T) {
	rdb := redistest.Client(t)
	r := recorderOn(t, rdb, time.Now)
	tenant := redistest.Tenant(t)
	ctx := context.Background()
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/all"})
	if err != nil {
		t.Fatal(err)
	}
	legacy := redisstore.LegacySequencesKey(r.store.Scope(tenant))
	if err := rdb.HSet(ctx, legacy, ep.GetId()+"|c-1", 7, ep.GetId()+"|c-2", 3).Err(); err != nil {
		t.Fatal(err)
	}
	next := event(t, tenant, "sales.deal.won", "c-1", "key-1", "req-1")
	if err := r.recorder.Record(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := r.recorder.Record(ctx, erasedEvent(t, tenant, "c-2")); err != nil {
		t.Fatal(err)
	}
	got := r.deliveriesOf(t, tenant, ep.GetId())
	if got[next.GetId()].Sequence != 8 {
		t.Errorf("c-1's next delivery: %+v, want number 8 after the old count's 7", got[next.GetId()])
	}
	fields := countFields(t, rdb, tenant)
	if len(fields) != 1 || !strings.HasSuffix(fields[0], " c-1") || strings.HasPrefix(fields[0], legacy+" ") {
		t.Errorf("count fields %v, want only c-1's in the endpoint's hash", fields)
	}
}

// TestErasureRacingTheCustomersEvents records a customer's erasure while another goroutine records
// events about the customer (writes that raced the erasure): the customer's numbers are 1..n
// without a gap or a repeat across the erasure, and the endpoint's hash keeps no field of it.
func TestErasureRacingTheCustomersEvents(t *testing.T) {
	rdb := redistest.Client(t)
	r := recorderOn(t, rdb, time.Now)
	tenant := redistest.Tenant(t)
	ctx := context.Background()
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/all"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	quarter := make(chan struct{})
	errs := make(chan error, n+1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-quarter
		errs <- r.recorder.Record(ctx, erasedEvent(t, tenant, "c-1"))
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			if i == n/4 {
				close(quarter)
			}
			errs <- r.recorder.Record(ctx, event(t, tenant, "sales.deal.won", "c-1", "key-1", fmt.Sprintf("req-%d", i)))
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for _, d := range r.deliveriesOf(t, tenant, ep.GetId()) {
		if d.Customer != "c-1" || seen[d.Sequence] {
			t.Errorf("delivery %+v: another customer or a repeated number", d)
		}
		seen[d.Sequence] = true
	}
	for i := int64(1); i <= n+1; i++ {
		if !seen[i] {
			t.Errorf("numbers %v miss %d of 1..%d", seen, i, n+1)
		}
	}
	if fields := countFields(t, rdb, tenant); len(fields) != 0 {
		t.Errorf("count fields left: %v", fields)
	}
}
