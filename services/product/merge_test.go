package product_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/product"
	"github.com/crmcycle/crm/services/product/redisstore"
)

// The merge world's ids are fixed, so the worlds of two tenants are the same but for the tenant.
const (
	survivorID = "cust-survivor"
	mergedID   = "cust-merged"
	// addOns is how many subscriptions of the add-on the merged customer has: more than one
	// batch of a merge.
	addOns = 120
)

var (
	suiteProduct = &product.Product{Id: "prod-suite", Sku: "SUITE", BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY,
		Features: []string{"reports", "pipeline"}}
	addOnProduct = &product.Product{Id: "prod-addon", Sku: "ADDON", BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY,
		Features: []string{"api", "reports"}}
	setupProduct = &product.Product{Id: "prod-setup", Sku: "SETUP", BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME,
		Features: []string{"exports"}}
)

// use is one usage record of the merge world.
type use struct {
	customer, sub, feature, user string
	quantity                     int64
	ago                          time.Duration
}

// mergeUses: the survivor uses the suite; the duplicate the add-on (a feature the suite has too,
// later, and by another user) and, last month, the setup entitlement it later gave back.
var mergeUses = []use{
	{survivorID, "sub-suite", "reports", "u1", 5, 3 * time.Hour},
	{mergedID, "sub-addon-000", "api", "u1", 3, time.Hour},
	{mergedID, "sub-addon-001", "api", "u2", 4, 2 * time.Hour},
	{mergedID, "sub-addon-002", "reports", "u2", 7, 30 * time.Minute},
	{mergedID, "sub-setup", "exports", "u3", 2, 40 * 24 * time.Hour},
}

// buildMergeWorld gives the fixture's tenant the survivor's suite (2 seats), the duplicate's
// addOns add-ons and a setup entitlement (canceled after use), and mergeUses, all with fixed ids
// and times.
func (f *fixture) buildMergeWorld(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	store := redisstore.New(f.rdb, f.keys)
	publisher := events.Publisher{Producer: "product", Propagator: propagation.TraceContext{}}
	envelope := func(typ eventv1.Type[*productv1.SubscriptionChanged], sub *product.Subscription) []byte {
		_, data, err := publisher.Envelope(ctx, typ.Of(&productv1.SubscriptionChanged{Subscription: sub, CustomerId: sub.GetCustomerId()}),
			f.tenant, sub.GetCustomerId(), start)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, p := range []*product.Product{suiteProduct, addOnProduct, setupProduct} {
		p := &product.Product{Id: p.GetId(), Sku: p.GetSku(), DisplayName: p.GetSku(), BillingPeriod: p.GetBillingPeriod(),
			Features: p.GetFeatures(), Price: &typev1.Money{CurrencyCode: "EUR", Units: 10}, Etag: etag.First}
		_, data, err := publisher.Envelope(ctx, productv1.EventProductCreated.Of(&productv1.ProductChanged{Product: p}), f.tenant, p.GetId(), start)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateProduct(ctx, f.tenant, p, data); err != nil {
			t.Fatal(err)
		}
	}
	subscription := func(id, customer string, p *product.Product, seats int64) *product.Subscription {
		ts := timestamppb.New(start.Add(-60 * 24 * time.Hour))
		s := &product.Subscription{Id: id, CustomerId: customer, ProductId: p.GetId(), Sku: p.GetSku(), OrderId: "order-" + customer,
			Quantity: seats, BillingPeriod: p.GetBillingPeriod(), Status: productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE,
			StartTime: ts, CreateTime: ts, UpdateTime: ts, Etag: etag.First}
		if product.Recurring(p.GetBillingPeriod()) {
			end := timestamppb.New(start.Add(10 * 24 * time.Hour))
			s.CurrentPeriodEndTime, s.RenewalTime = end, end
		}
		return s
	}
	place := func(customer string, subs ...*product.Subscription) {
		o := product.PlacedOrder{CustomerID: customer, Subscriptions: subs}
		for _, s := range subs {
			o.Events = append(o.Events, envelope(productv1.EventSubscriptionActivated, s))
			if !slices.Contains(o.Products, s.GetProductId()) {
				o.Products = append(o.Products, s.GetProductId())
			}
		}
		if err := store.PlaceOrder(ctx, f.tenant, o); err != nil {
			t.Fatal(err)
		}
	}
	place(survivorID, subscription("sub-suite", survivorID, suiteProduct, 2))
	merged := []*product.Subscription{subscription("sub-setup", mergedID, setupProduct, 1)}
	for i := range addOns {
		merged = append(merged, subscription(fmt.Sprintf("sub-addon-%03d", i), mergedID, addOnProduct, 1))
	}
	place(mergedID, merged...)
	for _, u := range mergeUses {
		if _, err := f.usage.Record(ctx, f.tenant, u.sub, &product.UsageRecord{Feature: u.feature, Quantity: u.quantity,
			UserId: u.user, Time: timestamppb.New(start.Add(-u.ago))}); err != nil {
			t.Fatal(err)
		}
	}
	// The setup entitlement canceled as if it were a subscription, as the service allowed before
	// one-time grants stopped being subscriptions: stored data a merge still moves.
	setup, err := store.GetSubscription(ctx, f.tenant, "sub-setup")
	if err != nil {
		t.Fatal(err)
	}
	canceled, now := proto.CloneOf(setup), timestamppb.New(f.clock.Now().UTC())
	canceled.Status, canceled.CancelTime, canceled.EndTime, canceled.UpdateTime = productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED, now, now, now
	canceled.Etag = etag.Next(setup.GetEtag())
	if err := store.UpdateSubscription(ctx, f.tenant, canceled, setup, envelope(productv1.EventSubscriptionCanceled, canceled)); err != nil {
		t.Fatal(err)
	}
}

// mergeEvent is marketing's announcement of the merge of the world's two customers.
func (f *fixture) mergeEvent(t *testing.T) *eventv1.Event {
	t.Helper()
	payload, err := anypb.New(&marketingv1.CustomerMerged{SurvivorCustomerId: survivorID, MergedCustomerId: mergedID})
	if err != nil {
		t.Fatal(err)
	}
	return &eventv1.Event{Id: "merge-event", Type: marketingv1.EventCustomerMerged.Name, TenantId: f.tenant, Payload: payload}
}

// merge handles the merge event as the service's subscription does, over rdb.
func (f *fixture) merge(t *testing.T, rdb redis.UniversalClient) error {
	t.Helper()
	store := redisstore.New(rdb, f.keys)
	publisher := events.Publisher{Producer: "product", Propagator: propagation.TraceContext{}}
	merges := product.NewMerges(store, product.NewUsage(store, store, store, publisher, f.clock.Now))
	return events.Subscribe("product", events.On(marketingv1.EventCustomerMerged, merges.OnCustomerMerged))[0].
		Handle(context.Background(), f.mergeEvent(t))
}

// productState is every product key of the fixture's tenant, read by type (hash fields and sorted
// set members sorted, so the order writes happened in does not show), with the tenant's prefix
// cut off; its entries on the partition's schedules; and its events counted by type and customer.
func (f *fixture) productState(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	scope := f.keys.Scope("product", f.tenant)
	prefix := scope.Key("")
	out := map[string]string{}
	iter := f.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var value string
		switch typ := f.rdb.Type(ctx, key).Val(); typ {
		case "hash":
			h := f.rdb.HGetAll(ctx, key).Val()
			for _, k := range slices.Sorted(maps.Keys(h)) {
				value += k + "=" + h[k] + " "
			}
		case "zset":
			for _, z := range f.rdb.ZRangeWithScores(ctx, key, 0, -1).Val() {
				value += fmt.Sprintf("%v:%v ", z.Member, z.Score)
			}
		case "string":
			value = f.rdb.Get(ctx, key).Val()
		default:
			value = typ
		}
		out[strings.TrimPrefix(key, prefix)] = value
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for _, schedule := range []string{"renewals-due", "adoption-rescore-due"} {
		key := f.keys.Partitioned("product", f.keys.Partition(f.tenant), schedule)
		members, _, err := f.rdb.ZScan(ctx, key, 0, f.tenant+"/*", 10000).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(members); i += 2 {
			out["schedule "+schedule+" "+strings.TrimPrefix(members[i], f.tenant+"/")] = members[i+1]
		}
	}
	msgs, err := f.rdb.XRange(ctx, scope.Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() == f.tenant {
			out["event "+ev.GetType()+" "+ev.GetCustomerId()] += "|" // counted in tallies

		}
	}
	return out
}

// keysNaming are the keys of the state that name the customer.
func keysNaming(state map[string]string, customer string) []string {
	var out []string
	for k := range state {
		if strings.Contains(k, customer) && !strings.HasPrefix(k, "event ") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// diff lists the keys whose values differ between two states.
func diff(a, b map[string]string) []string {
	var out []string
	for k := range a {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %q != %q", k, a[k], b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing != %q", k, b[k]))
		}
	}
	slices.Sort(out)
	return out
}

// checkMergedWorld checks the survivor's product reads after the merge against what the world's
// facts give, computed here from mergeUses and the subscriptions: usage totals, users and last
// uses per month and feature; owned products, seats and entitlements; the adoption, computed by
// the published rules; the duplicate gone from every read and key.
func (f *fixture) checkMergedWorld(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	now := start
	totals := map[string]map[string]int64{}
	users := map[string]map[string]bool{}
	last := map[string]time.Time{}
	for _, u := range mergeUses {
		at := now.Add(-u.ago)
		month := at.Format("2006-01")
		if totals[month] == nil {
			totals[month], users[month] = map[string]int64{}, map[string]bool{}
		}
		totals[month][u.feature] += u.quantity
		users[month][u.user] = true
		if at.After(last[u.feature]) {
			last[u.feature] = at
		}
	}
	scope := f.keys.Scope("product", f.tenant)
	for month, want := range totals {
		got := f.rdb.HGetAll(ctx, scope.Key("usage", "customer", survivorID, month)).Val()
		if fmt.Sprint(got) != fmt.Sprint(stringCounts(want)) {
			t.Errorf("survivor's usage in %s = %v, want %v", month, got, want)
		}
		gotUsers := f.rdb.ZRange(ctx, scope.Key("users", survivorID, month), 0, -1).Val()
		if want := slices.Sorted(maps.Keys(users[month])); fmt.Sprint(gotUsers) != fmt.Sprint(want) {
			t.Errorf("survivor's users in %s = %v, want %v", month, gotUsers, want)
		}
	}
	// The adoption: seats of the recurring subscriptions (the suite's 2 and an add-on's 1 each);
	// the features of the products owned (the setup was canceled), used in the last 30 days;
	// users this month; recency of the last use.
	seats := int64(2 + addOns)
	available := map[string]bool{}
	for _, p := range []*product.Product{suiteProduct, addOnProduct} {
		for _, feature := range p.GetFeatures() {
			available[feature] = true
		}
	}
	var used int32
	var latest time.Time
	for feature, at := range last {
		if available[feature] && now.Sub(at) <= 30*24*time.Hour {
			used++
		}
		if at.After(latest) {
			latest = at
		}
	}
	activeUsers := int64(len(users[now.Format("2006-01")]))
	score := int32(0)
	if now.Sub(latest) <= 7*24*time.Hour {
		score += 40
	}
	score += 30 * used / int32(len(available))
	score += int32(30 * min(activeUsers, seats) / seats)
	band := productv1.AdoptionBand_ADOPTION_BAND_AT_RISK
	switch {
	case score >= 70:
		band = productv1.AdoptionBand_ADOPTION_BAND_HEALTHY
	case score >= 40:
		band = productv1.AdoptionBand_ADOPTION_BAND_NEEDS_ATTENTION
	}
	a, err := f.usage.Adoption(ctx, f.tenant, survivorID)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetSeats() != seats || a.GetActiveUsers() != activeUsers || a.GetFeaturesUsed() != used ||
		a.GetFeaturesAvailable() != int32(len(available)) || !a.GetLastUsageTime().AsTime().Equal(latest) ||
		a.GetScore() != score || a.GetBand() != band {
		t.Errorf("survivor's adoption = %v; want %d seats, %d users, %d of %d features, last use %v, score %d, %v",
			a, seats, activeUsers, used, len(available), latest, score, band)
	}
	// The stored adoption (what the last announcement said) is the one served.
	stored, err := commit.Get(ctx, f.rdb, scope.Key("adoption", survivorID), &productv1.Adoption{}, product.ErrNoCustomer)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetBand() != band || stored.GetScore() != score {
		t.Errorf("survivor's announced adoption = %v, want score %d %v", stored, score, band)
	}
	if _, err := f.usage.Adoption(ctx, f.tenant, mergedID); !errors.Is(err, product.ErrNoCustomer) {
		t.Errorf("merged customer's adoption: %v, want ErrNoCustomer", err)
	}
	if _, err := f.recs.List(ctx, f.tenant, mergedID, 10); !errors.Is(err, product.ErrNoCustomer) {
		t.Errorf("merged customer's recommendations: %v, want ErrNoCustomer", err)
	}
	for _, p := range []*product.Product{suiteProduct, addOnProduct} {
		if e, err := f.subs.CheckEntitlement(ctx, f.tenant, survivorID, p.GetId()); err != nil || !e.GetEntitled() {
			t.Errorf("survivor's entitlement to %s: %v %v", p.GetSku(), e, err)
		}
	}
	if e, err := f.subs.CheckEntitlement(ctx, f.tenant, survivorID, setupProduct.GetId()); err != nil || e.GetReason() != product.ReasonCanceled {
		t.Errorf("survivor's entitlement to the canceled setup: %v %v, want reason %s", e, err, product.ReasonCanceled)
	}
	if subs := f.grantsOf(t, survivorID); len(subs) != 2+addOns {
		t.Errorf("survivor has %d subscriptions, want %d", len(subs), 2+addOns)
	}
	if left := keysNaming(f.productState(t), mergedID); len(left) > 0 {
		t.Errorf("keys naming the merged customer after the merge: %v", left)
	}
}

func stringCounts(m map[string]int64) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// TestMergeMovesUsageAndAdoption merges a customer with subscriptions, entitlements and usage in
// two months into another: every product read about the survivor agrees with the combined facts
// (checkMergedWorld), the survivor's new band is announced once, a repeated merge changes
// nothing, and another tenant with the same ids is untouched.
func TestMergeMovesUsageAndAdoption(t *testing.T) {
	f := newFixture(t)
	f.buildMergeWorld(t)
	other := newFixtureOn(t, f.rdb)
	other.buildMergeWorld(t)
	untouched := other.productState(t)

	if err := f.merge(t, f.rdb); err != nil {
		t.Fatal(err)
	}
	f.checkMergedWorld(t)
	once := f.productState(t)
	if n := once["event product.adoption.changed "+survivorID]; n != "||" {
		t.Errorf("survivor's adoption announced %d times, want twice (its first use, the merge)", len(n))
	}
	if err := f.merge(t, f.rdb); err != nil {
		t.Fatal(err)
	}
	if d := diff(once, f.productState(t)); len(d) > 0 {
		t.Errorf("a repeated merge changed %v", d)
	}
	if d := diff(untouched, other.productState(t)); len(d) > 0 {
		t.Errorf("the merge changed another tenant's %v", d)
	}
}

// TestProductMergeFinishesAfterACrashAtEveryStep dies after each write of product's reaction to
// a merge in turn (two subscription batches, the grant history, the usage, the rescoring); the
// event redelivered to a process that lives (twice) ends in exactly the state of a merge that never
// died: every product key of the tenant, its schedule entries and its events.
func TestProductMergeFinishesAfterACrashAtEveryStep(t *testing.T) {
	var uninterrupted map[string]string
	writes := int64(1 << 30) // counted on the first run, which does not crash
	for cut := int64(-1); cut <= writes; cut++ {
		t.Run(fmt.Sprint("after write ", cut), func(t *testing.T) {
			f := newFixture(t)
			f.buildMergeWorld(t)
			crash := redistest.CrashAfter(cut)
			dying := redistest.Client(t)
			dying.AddHook(crash)
			err := f.merge(t, dying)
			switch {
			case cut < 0:
				if writes = crash.Seen(); err != nil || writes < 5 {
					t.Fatalf("the merge without a crash: %d writes, %v", writes, err)
				}
			case cut < writes && !errors.Is(err, redistest.ErrCrashed):
				t.Fatalf("the dying process's merge returned %v, want it to die after write %d", err, cut)
			case cut == writes && err != nil:
				t.Fatalf("a merge of %d writes failed with %v", writes, err)
			}
			for range 2 {
				if err := f.merge(t, f.rdb); err != nil {
					t.Fatal(err)
				}
			}
			state := f.productState(t)
			if cut < 0 {
				f.checkMergedWorld(t)
				uninterrupted = state
				return
			}
			if d := diff(uninterrupted, state); len(d) > 0 {
				t.Errorf("after a crash after write %d and redelivery, the state differs from an uninterrupted merge's:\n%s",
					cut, strings.Join(d, "\n"))
			}
		})
	}
}

// beforeWrite is a Redis hook that runs once, before the first script whose arguments name a key
// containing part: something that happens between a write's reads and its commit.
type beforeWrite struct {
	part string
	once sync.Once
	run  func()
}

func (b *beforeWrite) DialHook(next redis.DialHook) redis.DialHook { return next }
func (b *beforeWrite) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && strings.Contains(s, b.part) {
					b.once.Do(b.run)
					break
				}
			}
		}
		return next(ctx, cmd)
	}
}
func (b *beforeWrite) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestUsageDuringAMergeCountsForTheSurvivor records usage on the duplicate's subscriptions while
// the merge runs. First exactly in between: the record read the subscription (still the
// duplicate's) and the merge ran to its end before the record's write. Then many records at once
// beside a merge. Every record counts once, on the survivor's counters, and nothing is left under
// the duplicate (a record whose subscription moved after it was read is read again).
func TestUsageDuringAMergeCountsForTheSurvivor(t *testing.T) {
	f := newFixture(t)
	f.buildMergeWorld(t)
	ctx := context.Background()
	month := start.Format("2006-01")
	scope := f.keys.Scope("product", f.tenant)
	apiUse := func() int64 {
		n, _ := f.rdb.HGet(ctx, scope.Key("usage", "customer", survivorID, month), "api").Int64()
		return n
	}
	want := int64(0)
	for _, u := range mergeUses {
		if u.feature == "api" && start.Add(-u.ago).Format("2006-01") == month {
			want += u.quantity
		}
	}

	// One record first brings the duplicate's announced band up to date (the canceled setup left
	// it stale), so the record across the merge changes no band: only its subscription's version
	// can stop it.
	if _, err := f.usage.Record(ctx, f.tenant, "sub-addon-004", &product.UsageRecord{Feature: "api", Quantity: 1, UserId: "u1", Time: timestamppb.New(start)}); err != nil {
		t.Fatal(err)
	}
	want++

	hooked := redistest.Client(t)
	hooked.AddHook(&beforeWrite{part: ":usage:customer:", run: func() {
		if err := f.merge(t, f.rdb); err != nil {
			t.Error(err)
		}
	}})
	store := redisstore.New(hooked, f.keys)
	usage := product.NewUsage(store, store, store, events.Publisher{Producer: "product", Propagator: propagation.TraceContext{}}, f.clock.Now)
	if _, err := usage.Record(ctx, f.tenant, "sub-addon-005", &product.UsageRecord{Feature: "api", Quantity: 10, UserId: "u8", Time: timestamppb.New(start)}); err != nil {
		t.Fatal(err)
	}
	want += 10
	if got := apiUse(); got != want {
		t.Errorf("survivor's api usage after a record across the merge = %d, want %d", got, want)
	}
	if left := keysNaming(f.productState(t), mergedID); len(left) > 0 {
		t.Fatalf("keys naming the merged customer after a record across the merge: %v", left)
	}

	// Many records at once beside a second merge (a redelivery) into the survivor.
	const records = 40
	var wg sync.WaitGroup
	errs := make(chan error, records+1)
	wg.Go(func() { errs <- f.merge(t, f.rdb) })
	for i := range records {
		wg.Go(func() {
			_, err := f.usage.Record(ctx, f.tenant, fmt.Sprintf("sub-addon-%03d", i), &product.UsageRecord{
				Feature: "api", Quantity: 1, UserId: "u9", Time: timestamppb.New(start)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want += records
	if got := apiUse(); got != want {
		t.Errorf("survivor's api usage in %s = %d, want %d", month, got, want)
	}
	if left := keysNaming(f.productState(t), mergedID); len(left) > 0 {
		t.Errorf("keys naming the merged customer after the merge: %v", left)
	}
	users := f.rdb.ZRange(ctx, scope.Key("users", survivorID, month), 0, -1).Val()
	if !slices.Contains(users, "u8") || !slices.Contains(users, "u9") {
		t.Errorf("survivor's users %v miss the records' users", users)
	}
}

// TestAnOrderAcrossAMergeGrantsTheSurvivor: an order about the duplicate whose event is handled
// after the merge (placed just before it), and one whose write comes right after the merge ran
// between its reads and its commit, both grant the survivor; nothing is left under the duplicate.
func TestAnOrderAcrossAMergeGrantsTheSurvivor(t *testing.T) {
	f := newFixture(t)
	f.buildMergeWorld(t)
	ctx := context.Background()
	before := len(f.grantsOf(t, survivorID))
	eventsBefore := eventsAbout(f.productState(t), mergedID)

	// The order's reads done, the merge runs to its end, then the order's write.
	hooked := redistest.Client(t)
	hooked.AddHook(&beforeWrite{part: ":merged-customers", run: func() {
		if err := f.merge(t, f.rdb); err != nil {
			t.Error(err)
		}
	}})
	store := redisstore.New(hooked, f.keys)
	subs := product.NewSubscriptions(store, store, events.Publisher{Producer: "product", Propagator: propagation.TraceContext{}}, f.clock.Now)
	onSales := events.Subscribe("product", events.On(salesv1.EventOrderPlaced, subs.OnOrderPlaced))[0].Handle
	if err := onSales(ctx, f.orderEvent(t, mergedID, line(addOnProduct, 2))); err != nil {
		t.Fatal(err)
	}
	// The merge done, a late event about the duplicate.
	if err := f.onSales(ctx, f.orderEvent(t, mergedID, line(suiteProduct, 1), line(setupProduct, 1))); err != nil {
		t.Fatal(err)
	}

	if got := f.grantsOf(t, mergedID); len(got) != 0 {
		t.Errorf("%d subscriptions under the merged customer, want none", len(got))
	}
	if left := keysNaming(f.productState(t), mergedID); len(left) > 0 {
		t.Errorf("keys naming the merged customer after orders across the merge: %v", left)
	}
	// The duplicate's addOns + setup moved, and the two orders' three lines.
	if got, want := len(f.grantsOf(t, survivorID)), before+addOns+1+3; got != want {
		t.Errorf("survivor has %d subscriptions, want %d", got, want)
	}
	if got := eventsAbout(f.productState(t), mergedID); got != eventsBefore {
		t.Errorf("events about the merged customer: %s, want only those before the orders: %s", got, eventsBefore)
	}
}

// eventsAbout is the state's event tallies about the customer.
func eventsAbout(state map[string]string, customer string) string {
	var out []string
	for k, v := range state {
		if strings.HasPrefix(k, "event ") && strings.HasSuffix(k, " "+customer) {
			out = append(out, k+"="+v)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestAMergeWithoutUsageAnnouncesNoAdoption merges two customers neither of whom used anything
// (the survivor bought a one-time product, the duplicate a subscription): the survivor is not
// scored, so no adoption change (an "at risk" band) is announced for usage nobody recorded.
func TestAMergeWithoutUsageAnnouncesNoAdoption(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	setup := f.product(t, productSpec{sku: "SETUP", period: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME, features: []string{"exports"}})
	suite := f.product(t, productSpec{sku: "SUITE", period: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, features: []string{"reports"}})
	if err := f.onSales(ctx, f.orderEvent(t, survivorID, line(setup, 1))); err != nil {
		t.Fatal(err)
	}
	if err := f.onSales(ctx, f.orderEvent(t, mergedID, line(suite, 2))); err != nil {
		t.Fatal(err)
	}
	if err := f.merge(t, f.rdb); err != nil {
		t.Fatal(err)
	}
	if got := len(f.grantsOf(t, survivorID)); got != 2 {
		t.Fatalf("survivor has %d grants after the merge, want 2 (its entitlement and the moved subscription)", got)
	}
	if n := f.eventTypes(t)[productv1.EventAdoptionChanged.Name]; n != 0 {
		t.Errorf("%d adoption changes announced for customers who never used anything, want none", n)
	}
	if _, err := f.usage.Record(ctx, f.tenant, f.subscriptionsOf(t, survivorID)[0].GetId(),
		&product.UsageRecord{Feature: "reports", Quantity: 1, UserId: "u1", Time: timestamppb.New(f.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	if n := f.eventTypes(t)[productv1.EventAdoptionChanged.Name]; n != 1 {
		t.Errorf("%d adoption changes after the survivor's first use, want 1", n)
	}
}
