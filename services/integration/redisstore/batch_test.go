package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// scriptCalls counts, per pipeline sent, its script calls and their keys.
type scriptCalls struct {
	mu    sync.Mutex
	calls [][]int // per pipeline: each EVALSHA's number of keys
}

func (h *scriptCalls) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var keys []int
		for _, c := range cmds {
			if args := c.Args(); c.Name() == "evalsha" {
				n, _ := strconv.Atoi(fmt.Sprint(args[2]))
				keys = append(keys, n)
			}
		}
		h.mu.Lock()
		h.calls = append(h.calls, keys)
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *scriptCalls) take() [][]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

// answer is what one Ingest returned.
type answer struct {
	seqs    []int64
	applied bool
	err     error
}

// batchRig is a store whose pipelines can be held, so that ingests queue up behind one and go
// to Redis together.
type batchRig struct {
	rdb   *redis.Client
	store *redisstore.Store
	hold  *holdPipelines
	calls *scriptCalls
}

func newBatchRig(t *testing.T) *batchRig {
	t.Helper()
	rdb := redistest.NewServer(t).Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	r := &batchRig{rdb: rdb, store: redisstore.New(rdb, keys), calls: &scriptCalls{}}
	rdb.AddHook(r.calls)
	return r
}

// batch sends ins while a first ingest (of blocker) is held on its way to Redis: they queue up
// behind it and go out together once it is through. It returns their answers.
func (r *batchRig) batch(t *testing.T, blocker redisstore.Ingestion, ins []redisstore.Ingestion) []answer {
	t.Helper()
	ctx := context.Background()
	// Every pipeline from now on says it is sending (the buffer takes them all) and waits for release.
	r.hold = &holdPipelines{sending: make(chan struct{}, 1<<10), release: make(chan struct{})}
	r.rdb.AddHook(r.hold)
	first := make(chan error, 1)
	go func() {
		_, _, _, err := r.store.Ingest(ctx, blocker)
		first <- err
	}()
	<-r.hold.sending
	out := make([]answer, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() { out[i].seqs, _, out[i].applied, out[i].err = r.store.Ingest(ctx, in) })
		// One at a time, so that the queue holds them in this order.
		deadline := time.Now().Add(10 * time.Second)
		for r.store.Queued() < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("ingest %d never queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.calls.take()
	close(r.hold.release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	return out
}

func delivery(id, endpoint, customer string) redisstore.NewDelivery {
	return redisstore.NewDelivery{
		Delivery: &integrationv1.Delivery{Id: id, EndpointId: endpoint, EventId: "e-" + id, CustomerId: customer},
		Body:     []byte(`{"type":"x"}`),
	}
}

// TestIngestsOfAPartitionGoInOneScriptCall: events queued together are recorded in one script
// call per partition, each with its own answer as if it had been alone: recorded with its
// sequence numbers, recorded before (a redelivery), its customer merged, its endpoints changed,
// its customer erased (the counts move aside); a redelivered batch changes nothing.
func TestIngestsOfAPartitionGoInOneScriptCall(t *testing.T) {
	r := newBatchRig(t)
	ctx := context.Background()
	const tenant, other = "t-batch", "t-other"
	if r.store.Due(tenant) == r.store.Due(other) {
		t.Fatal("the two tenants must be in different partitions")
	}
	at := time.Now()
	in := func(tenant, id, customer string, deliveries ...redisstore.NewDelivery) redisstore.Ingestion {
		sc := r.store.Scope(tenant)
		return redisstore.Ingestion{Tenant: tenant, EventID: id, Customer: customer, EndpointsVersion: "0",
			Entry:   &integrationv1.AuditEntry{Id: id, EventType: "marketing.lead.captured", CustomerId: customer},
			Indexes: []string{redisstore.AuditKey(sc)}, Deliveries: deliveries, DueAt: at, DeliveryTTL: time.Hour}
	}
	// Before the batch: ev-0 recorded (c-4's first delivery), c-2 merged into c-3.
	if _, _, applied, err := r.store.Ingest(ctx, in(tenant, "ev-0", "c-4", delivery("d-0", "ep", "c-4"))); err != nil || !applied {
		t.Fatalf("ev-0: applied %v, %v", applied, err)
	}
	if err := r.store.MergeTimeline(ctx, tenant, "c-2", "c-3", "0", []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	stale := in(tenant, "ev-stale", "c-5")
	stale.EndpointsVersion = "7"
	erasure := in(tenant, "ev-erased", "c-4", delivery("d-4", "ep", "c-4"))
	erasure.Forget = []string{"ep"}
	batch := []redisstore.Ingestion{
		in(tenant, "ev-1", "c-1", delivery("d-1", "ep", "c-1")),
		in(tenant, "ev-0", "c-4", delivery("d-0b", "ep", "c-4")), // redelivered
		in(tenant, "ev-2", "c-2", delivery("d-2", "ep", "c-2")),  // c-2 was merged
		stale,
		erasure,
		in(other, "ev-o", "c-9", delivery("d-o", "ep", "c-9")),
		in(tenant, "ev-3", "", delivery("d-3", "ep", "")),
	}
	want := []answer{
		{seqs: []int64{1}, applied: true},
		{},
		{err: &redisstore.MergedError{Survivor: "c-3"}},
		{err: redisstore.ErrStaleEndpoints},
		{seqs: []int64{2}, applied: true},
		{seqs: []int64{1}, applied: true},
		{seqs: []int64{1}, applied: true},
	}
	check := func(name string, got, want []answer) {
		t.Helper()
		for i := range want {
			g, w := got[i], want[i]
			var merged *redisstore.MergedError
			switch {
			case w.err != nil && errors.As(w.err, &merged):
				var m *redisstore.MergedError
				if !errors.As(g.err, &m) || m.Survivor != merged.Survivor {
					t.Errorf("%s: %s: got %+v, want merged into %s", name, batch[i].EventID, g, merged.Survivor)
				}
			case w.err != nil:
				if !errors.Is(g.err, w.err) {
					t.Errorf("%s: %s: got %+v, want %v", name, batch[i].EventID, g, w.err)
				}
			case g.err != nil || g.applied != w.applied || fmt.Sprint(g.seqs) != fmt.Sprint(w.seqs):
				t.Errorf("%s: %s: got %+v, want %+v", name, batch[i].EventID, g, w)
			}
		}
	}
	check("batch", r.batch(t, in(tenant, "ev-blocker", ""), batch), want)
	// One pipeline of two script calls: the tenant's six events, the other tenant's one.
	calls := r.calls.take()
	if len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("script calls per pipeline: %v, want one pipeline of two calls", calls)
	}

	sc := r.store.Scope(tenant)
	for key, wantFields := range map[string]map[string]string{
		redisstore.SequencesKey(sc, "ep"):                   {"c-1": "1", "": "1"}, // c-4's count left with the erasure
		redisstore.ErasedSequencesKey(sc, "c-4"):            {"ep": "2", "-": "1"},
		redisstore.SequencesKey(r.store.Scope(other), "ep"): {"c-9": "1"},
	} {
		got, err := r.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantFields) {
			t.Errorf("%s: got %v, want %v", key, got, wantFields)
		}
	}
	for id, wantExists := range map[string]int64{"ev-1": 1, "ev-2": 0, "ev-stale": 0, "ev-erased": 1, "ev-3": 1} {
		if n, _ := r.rdb.Exists(ctx, redisstore.EntryKey(sc, id)).Result(); n != wantExists {
			t.Errorf("history entry of %s: exists %d, want %d", id, n, wantExists)
		}
	}
	if n, _ := r.rdb.Exists(ctx, redisstore.DeliveryKey(sc, "d-0b")).Result(); n != 0 {
		t.Errorf("the redelivered event made a delivery")
	}

	// The same batch again: what was recorded is recorded before; the rest answers as before.
	again := r.batch(t, in(tenant, "ev-blocker-2", ""), batch)
	wantAgain := append([]answer(nil), want...)
	for _, i := range []int{0, 4, 5, 6} {
		wantAgain[i] = answer{}
	}
	check("redelivered", again, wantAgain)
	logged, err := r.rdb.ZCard(ctx, redisstore.DeliveryLogKey(sc, "ep")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if logged != 4 { // d-0, d-1, d-4, d-3
		t.Errorf("the endpoint's log holds %d deliveries after the redelivered batch, want 4", logged)
	}
}

// TestConcurrentIngestsKeepEachCustomersOrder: many callers, each recording its customers' events
// one after the other as the recorder's lanes do, batched together: every customer's deliveries
// are numbered 1, 2, 3... in the order of its events, none twice.
func TestConcurrentIngestsKeepEachCustomersOrder(t *testing.T) {
	r := newBatchRig(t)
	ctx := context.Background()
	const lanes, perCustomer = 48, 6
	tenants := []string{"t-a", "t-b", "t-c"}
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Go(func() {
			tenant, customer := tenants[l%len(tenants)], "c-"+strconv.Itoa(l)
			for i := range perCustomer {
				id := fmt.Sprintf("%s-%d", customer, i)
				seqs, _, applied, err := r.store.Ingest(ctx, redisstore.Ingestion{Tenant: tenant, EventID: id, Customer: customer,
					EndpointsVersion: "0", Deliveries: []redisstore.NewDelivery{delivery("d-"+id, "ep", customer)},
					DueAt: time.Now(), DeliveryTTL: time.Hour})
				if err != nil || !applied || len(seqs) != 1 || seqs[0] != int64(i+1) {
					t.Errorf("%s: seqs %v, applied %v, %v; want [%d]", id, seqs, applied, err, i+1)
					return
				}
			}
		})
	}
	wg.Wait()
	events, scripts := 0, 0
	for _, p := range r.calls.take() {
		scripts += len(p)
	}
	events = lanes * perCustomer
	t.Logf("%d events in %d script calls", events, scripts)
	if scripts > events {
		t.Errorf("%d script calls for %d events", scripts, events)
	}
}

// TestTenantKeysUnderConcurrentFirstUse: the store builds a tenant's scope, fixed keys and audit
// indexes once and keeps them; callers meeting new tenants (and event types) side by side each get
// that tenant's own (run with -race).
func TestTenantKeysUnderConcurrentFirstUse(t *testing.T) {
	r := newBatchRig(t)
	keys, err := keyspace.Open(context.Background(), r.rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 64 {
				tenant := "t-" + strconv.Itoa((g+i)%24)
				want := keys.Scope(redisstore.Service, tenant)
				if got := r.store.Scope(tenant); got.Key("x") != want.Key("x") || got.Stream() != want.Stream() {
					t.Errorf("scope of %s: key %q, stream %q; want %q, %q", tenant, got.Key("x"), got.Stream(), want.Key("x"), want.Stream())
					return
				}
				if got, want := r.store.Due(tenant), r.store.DueOf(keys.Partition(tenant)); got != want {
					t.Errorf("due queue of %s: %q, want %q", tenant, got, want)
					return
				}
				typ := "svc.thing." + strconv.Itoa((g*i)%5)
				all, ofType := r.store.AuditIndexes(tenant, typ)
				if all != redisstore.AuditKey(want) || ofType != redisstore.AuditKey(want, "type", typ) {
					t.Errorf("audit indexes of %s %s: %q, %q; want %q, %q", tenant, typ, all, ofType,
						redisstore.AuditKey(want), redisstore.AuditKey(want, "type", typ))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestABatchAddsToEachIndexOnce: the events of one script call go to their history indexes with
// one ZADD per index (the tenant-wide ones shared), each index listing exactly the events recorded
// into it, whatever keys each event names (with or without a customer, deliveries, erasure counts,
// registering the tenant) and whatever it answers (recorded, before, merged, stale; merged before
// recorded before, as when the alias was read first).
func TestABatchAddsToEachIndexOnce(t *testing.T) {
	r := newBatchRig(t)
	ctx := context.Background()
	const tenant = "t-zadd"
	sc := r.store.Scope(tenant)
	at := time.Now()
	all, typ := redisstore.AuditKey(sc), redisstore.AuditKey(sc, "type", "x")
	in := func(id, customer string, deliveries ...redisstore.NewDelivery) redisstore.Ingestion {
		return redisstore.Ingestion{Tenant: tenant, EventID: id, Customer: customer, EndpointsVersion: "0",
			Entry:   &integrationv1.AuditEntry{Id: id, EventType: "x", CustomerId: customer},
			Indexes: []string{all, typ, redisstore.AuditKey(sc, "request", "r-"+id)}, Deliveries: deliveries, DueAt: at, DeliveryTTL: time.Hour}
	}
	if _, _, applied, err := r.store.Ingest(ctx, in("ev-0", "c-0")); err != nil || !applied {
		t.Fatalf("ev-0: applied %v, %v", applied, err)
	}
	if err := r.store.MergeTimeline(ctx, tenant, "c-2", "c-3", "0", nil); err != nil {
		t.Fatal(err)
	}
	registering := in("ev-4", "c-4")
	registering.Register = true
	stale := in("ev-stale", "c-5")
	stale.EndpointsVersion = "7"
	erasure := in("ev-6", "c-6")
	erasure.Forget = []string{"ep"}
	batch := []redisstore.Ingestion{
		in("ev-1", "c-1", delivery("d-1", "ep", "c-1")),
		in("ev-0", "c-0"), // redelivered
		in("ev-2", "c-2"), // c-2 was merged
		registering,
		stale,
		in("ev-5", ""),
		erasure,
		in("ev-7", "c-1"),
		{Tenant: tenant, EventID: "ev-8", EndpointsVersion: "0", DueAt: at, DeliveryTTL: time.Hour}, // no entry: a marker
		in("ev-0", "c-2"), // recorded before, and about a merged customer: the merge answers
	}
	if err := r.rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got := r.batch(t, in("ev-blocker", ""), batch)
	for i, want := range []bool{true, false, false, true, false, true, true, true, true, false} {
		if got[i].applied != want {
			t.Errorf("%s: applied %v (%v), want %v", batch[i].EventID, got[i].applied, got[i].err, want)
		}
	}
	for _, i := range []int{2, 9} {
		var merged *redisstore.MergedError
		if !errors.As(got[i].err, &merged) || merged.Survivor != "c-3" {
			t.Errorf("%s about %s: %v, want merged into c-3", batch[i].EventID, batch[i].Customer, got[i].err)
		}
	}
	recorded := []string{"ev-1", "ev-4", "ev-5", "ev-6", "ev-7"}
	wantIndexes := map[string][]string{
		all: append([]string{"ev-0"}, append(recorded, "ev-blocker")...), typ: append([]string{"ev-0"}, append(recorded, "ev-blocker")...),
		redisstore.TimelineKey(sc, "c-1"): {"ev-1", "ev-7"}, redisstore.TimelineKey(sc, "c-4"): {"ev-4"},
		redisstore.TimelineKey(sc, "c-3"): nil, redisstore.TimelineKey(sc, "c-5"): nil,
		redisstore.AuditKey(sc, "request", "r-ev-2"): nil, redisstore.AuditKey(sc, "request", "r-ev-8"): nil,
		redisstore.AuditKey(sc, "request", "r-ev-0"): {"ev-0"},
	}
	for _, id := range recorded {
		wantIndexes[redisstore.AuditKey(sc, "request", "r-"+id)] = []string{id}
	}
	for key, want := range wantIndexes {
		members, err := r.rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(members) != fmt.Sprint(want) {
			t.Errorf("%s lists %v, want %v", key, members, want)
		}
	}
	if n, _ := r.rdb.Exists(ctx, redisstore.MarkerKey(sc, "ev-8")).Result(); n != 1 {
		t.Error("the event without an entry left no marker")
	}
	// ZADDs: the blocker's three (its own call), then this call's: all, type, five requests,
	// three timelines (c-1, c-4, c-6), the tenant's registration, and ev-1's delivery (its
	// endpoint's log, its lane, the due queue).
	zadds := 0
	info, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, ok := strings.Cut(info, "cmdstat_zadd:calls="); ok {
		zadds, _ = strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	}
	if want := 3 + 2 + 5 + 3 + 1 + 3; zadds != want {
		t.Errorf("%d ZADDs, want %d: one per index and call", zadds, want)
	}
}
