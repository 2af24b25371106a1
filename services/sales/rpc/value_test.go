package rpc_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	exact "github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/sales"
	"github.com/crmcycle/crm/services/sales/redisstore"
)

// history is a generated order history of one tenant, and the clock its reads run at.
type history struct {
	customers []string
	seen      []time.Time // when each customer was first seen (the time in their id)
	orders    []*salesv1.Order
	now       atomic.Int64 // Unix ms
}

func (h *history) clock() time.Time { return time.UnixMilli(h.now.Load()).UTC() }

// customerIDAt is a UUIDv7 customer id minted at t, as marketing mints one when it first sees a
// person.
func customerIDAt(t time.Time) string {
	var id uuid.UUID
	_, _ = rand.Read(id[:])
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	id[6] = id[6]&0x0f | 0x70
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}

// generateOrders adds n orders placed between from and to, over the customers (a few of them buy
// a lot), in three currencies (each customer mostly in one), some lines discounted, some
// recurring.
func (h *history) generateOrders(rng *mathrand.Rand, n int, from, to time.Time) {
	currencies := []string{"USD", "EUR", "JPY"}
	for range n {
		i := int(float64(len(h.customers)) * rng.Float64() * rng.Float64())
		customer := h.customers[i]
		currency := currencies[i%3]
		if rng.IntN(4) == 0 {
			currency = currencies[rng.IntN(3)]
		}
		// Orders come after the customer is first seen; one in ten within hours of it (an impulse).
		earliest := from
		if h.seen[i].After(from) {
			earliest = h.seen[i]
		}
		at := earliest.Add(time.Duration(rng.Int64N(int64(to.Sub(earliest))))).Truncate(time.Millisecond)
		if rng.IntN(10) == 0 && !h.seen[i].Before(from) && h.seen[i].Add(20*time.Hour).Before(to) {
			at = h.seen[i].Add(time.Duration(rng.Int64N(int64(20 * time.Hour)))).Truncate(time.Millisecond)
		}
		var lines []*salesv1.OrderLine
		var totals []*typev1.Money
		for range 1 + rng.IntN(3) {
			unit := money(currency, 1e9+rng.Int64N(500e9))
			discount := int32(0)
			if rng.IntN(3) == 0 {
				discount = int32(5 + rng.IntN(46))
			}
			gross, _ := exact.Times(unit, int64(1+rng.IntN(5)))
			total, _ := exact.LessPercent(gross, discount)
			lines = append(lines, &salesv1.OrderLine{ProductId: uuid.NewString(), Quantity: 1, UnitPrice: unit,
				DiscountPercent: discount, Total: total, Recurring: rng.IntN(10) == 0})
			totals = append(totals, total)
		}
		total, _ := exact.Sum(currency, totals...)
		h.orders = append(h.orders, &salesv1.Order{Id: uuid.NewString(), CustomerId: customer, Lines: lines, Total: total,
			CurrencyCode: currency, CreateTime: timestamppb.New(at), UpdateTime: timestamppb.New(at), Etag: "1"})
	}
}

// place writes orders through the order use case's commit path, 32 at once: orders of one
// customer race each other on its value.
func place(t *testing.T, sys *system, tenant string, orders []*salesv1.Order) {
	t.Helper()
	deps := sys.Suite.Deps
	uc := sales.NewOrders(sales.Env{Store: redisstore.New(deps.Redis, deps.Keys), Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}, Now: time.Now}, nil)
	var g errgroup.Group
	g.SetLimit(32)
	for _, o := range orders {
		g.Go(func() error {
			_, err := uc.Place(context.Background(), tenant, o)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// independentValues computes every customer's value from the raw orders: totals by big-integer
// sums, scores by sorting, the type by the rules of DESIGN §5.
func independentValues(customers []string, orders []*salesv1.Order, now time.Time) map[string]*salesv1.CustomerValue {
	const yearMs = int64(365 * 24 * time.Hour / time.Millisecond)
	type facts struct {
		count, discounted int64
		first, last       time.Time
		recurring         bool
		counts            map[string]int64
		nanos             map[string]*big.Int
	}
	by := map[string]*facts{}
	for _, o := range orders {
		f := by[o.GetCustomerId()]
		if f == nil {
			f = &facts{counts: map[string]int64{}, nanos: map[string]*big.Int{}}
			by[o.GetCustomerId()] = f
		}
		at := o.GetCreateTime().AsTime()
		if f.count == 0 || at.Before(f.first) {
			f.first = at
		}
		if f.count == 0 || at.After(f.last) {
			f.last = at
		}
		f.count++
		disc := false
		for _, l := range o.GetLines() {
			disc = disc || l.GetDiscountPercent() > 0
			f.recurring = f.recurring || l.GetRecurring()
		}
		if disc {
			f.discounted++
		}
		c := o.GetCurrencyCode()
		f.counts[c]++
		if f.nanos[c] == nil {
			f.nanos[c] = new(big.Int)
		}
		f.nanos[c].Add(f.nanos[c], exact.Nanos(o.GetTotal()))
	}
	main := func(f *facts) string {
		codes := make([]string, 0, len(f.counts))
		for c := range f.counts {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		best := codes[0]
		for _, c := range codes {
			if f.counts[c] > f.counts[best] {
				best = c
			}
		}
		return best
	}
	// Ranks: sorted values, "below" found by binary search.
	var lasts, counts []int64
	monetary := map[string][]*big.Int{}
	var spanSum, repeat int64
	for _, f := range by {
		lasts, counts = append(lasts, f.last.UnixMilli()), append(counts, f.count)
		monetary[main(f)] = append(monetary[main(f)], f.nanos[main(f)])
		if f.count >= 2 {
			spanSum += f.last.Sub(f.first).Milliseconds()
			repeat++
		}
	}
	slices.Sort(lasts)
	slices.Sort(counts)
	for _, m := range monetary {
		slices.SortFunc(m, func(a, b *big.Int) int { return a.Cmp(b) })
	}
	below := func(sorted []int64, v int64) int64 {
		return int64(sort.Search(len(sorted), func(i int) bool { return sorted[i] >= v }))
	}
	score := func(b, n int64) int32 { return int32(1 + 5*b/n) }
	// The expected lifetime is the repeat customers' average span, at least a year.
	expected := big.NewRat(yearMs, 1)
	expectedYears := 1.0
	if repeat > 0 && spanSum > yearMs*repeat {
		expected = big.NewRat(spanSum, repeat)
		expectedYears = float64(spanSum) / float64(repeat) / float64(yearMs)
	}

	out := map[string]*salesv1.CustomerValue{}
	for _, id := range customers {
		f := by[id]
		raw := uuid.MustParse(id)
		v := &salesv1.CustomerValue{CustomerId: id, ExpectedLifetimeYears: expectedYears,
			FirstSeenTime: timestamppb.New(time.UnixMilli(int64(binary.BigEndian.Uint64(append([]byte{0, 0}, raw[:6]...)))))}
		out[id] = v
		if f == nil {
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_POTENTIAL
			continue
		}
		tenure := max(now.Sub(f.first).Milliseconds(), yearMs)
		v.OrderCount, v.DiscountedOrderCount, v.Recurring, v.MainCurrency = f.count, f.discounted, f.recurring, main(f)
		v.FirstOrderTime, v.LastOrderTime = timestamppb.New(f.first), timestamppb.New(f.last)
		v.PurchaseFrequency = float64(f.count) * float64(yearMs) / float64(tenure)
		m := monetary[v.MainCurrency]
		v.Rfm = &salesv1.RfmScores{
			Recency:   score(below(lasts, f.last.UnixMilli()), int64(len(lasts))),
			Frequency: score(below(counts, f.count), int64(len(counts))),
			Monetary: score(int64(sort.Search(len(m), func(i int) bool { return m[i].Cmp(f.nanos[v.MainCurrency]) >= 0 })),
				int64(len(m))),
		}
		codes := make([]string, 0, len(f.counts))
		for c := range f.counts {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			ltv := new(big.Rat).Mul(new(big.Rat).SetInt(f.nanos[c]), new(big.Rat).Quo(expected, big.NewRat(tenure, 1)))
			v.Currencies = append(v.Currencies, &salesv1.CurrencyValue{
				CurrencyCode: c, OrderCount: f.counts[c], Revenue: moneyOf(c, f.nanos[c]),
				AverageOrderValue: moneyOf(c, new(big.Int).Quo(f.nanos[c], big.NewInt(f.counts[c]))),
				LifetimeValue:     moneyOf(c, new(big.Int).Quo(ltv.Num(), ltv.Denom())),
			})
		}
		switch {
		case 2*f.discounted > f.count:
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_DISCOUNT
		case f.count >= 2 || f.recurring:
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_LOYAL
		case f.first.Sub(v.GetFirstSeenTime().AsTime()) >= 0 && f.first.Sub(v.GetFirstSeenTime().AsTime()) <= 24*time.Hour:
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_IMPULSIVE
		case now.Sub(f.first) <= 90*24*time.Hour:
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_NEW
		default:
			v.CustomerType = salesv1.CustomerType_CUSTOMER_TYPE_POTENTIAL
		}
	}
	return out
}

func moneyOf(currency string, nanos *big.Int) *typev1.Money {
	m, err := exact.FromNanos(currency, nanos)
	if err != nil {
		panic(err)
	}
	return m
}

// checkValues reads every customer's value over gRPC and compares it with the independent one.
func checkValues(t *testing.T, sys *system, key string, want map[string]*salesv1.CustomerValue) {
	t.Helper()
	c, ctx := sys.sales(key)
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(32)
	diffs := 0
	for id, w := range want {
		if w.GetOrderCount() == 0 {
			continue
		}
		g.Go(func() error {
			got, err := c.GetCustomerValue(ctx, &salesv1.GetCustomerValueRequest{CustomerId: id})
			if err != nil {
				return err
			}
			// proto.Equal first: cmp's reflection over thousands of values is the slow part.
			v := got.GetValue()
			v.Etag = ""
			for _, f := range []struct {
				got  *float64
				want float64
			}{{&v.PurchaseFrequency, w.GetPurchaseFrequency()}, {&v.ExpectedLifetimeYears, w.GetExpectedLifetimeYears()}} {
				if math.Abs(*f.got-f.want) <= 1e-9*math.Abs(f.want) {
					*f.got = f.want
				}
			}
			if proto.Equal(w, v) {
				return nil
			}
			if d := cmp.Diff(w, v, protocmp.Transform()); d != "" {
				mu.Lock()
				defer mu.Unlock()
				if diffs++; diffs <= 3 {
					t.Errorf("value of %s (-independent +served):\n%s", id, d)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if diffs > 0 {
		t.Fatalf("%d of %d customers differ", diffs, len(want))
	}
}

func TestCustomerValueMatchesAnIndependentComputation(t *testing.T) {
	h := &history{}
	end := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	h.now.Store(end.UnixMilli())
	sys := startSystem(t, servicetest.OwnRedis, func(o *servicetest.Options) { o.Now = h.clock })
	tenant, key := sys.NewKey(t, "", salesScopes...)
	rng := mathrand.New(mathrand.NewPCG(14, 2026))
	customers, orders := servicetest.Size(2000, 20000), servicetest.Size(10000, 100000)
	start := end.AddDate(-2, 0, 0)
	for range customers {
		seen := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start) - 24*time.Hour)))).Truncate(time.Millisecond)
		h.customers, h.seen = append(h.customers, customerIDAt(seen)), append(h.seen, seen)
	}
	h.generateOrders(rng, orders, start, end)
	place(t, sys, tenant, h.orders)
	checkValues(t, sys, key, independentValues(h.customers, h.orders, end))

	// New orders land later: the kept totals, ranks and types move with them.
	later := end.AddDate(0, 2, 0)
	h.now.Store(later.UnixMilli())
	before := len(h.orders)
	h.generateOrders(rng, orders/10, end, later)
	place(t, sys, tenant, h.orders[before:])
	want := independentValues(h.customers, h.orders, later)
	checkValues(t, sys, key, want)

	types := map[salesv1.CustomerType]int{}
	for _, v := range want {
		types[v.GetCustomerType()]++
	}
	if len(types) != 5 {
		t.Fatalf("the history covers types %v, want all five", types)
	}
}

// TestLifetimeValueFloors: the documented formula (average order value x orders per year x
// expected years) with its floors, checked against hand-computed figures and the independent
// computation: repeat customers who ordered seconds apart make a fresh tenant expect a year (its
// floor), not a lifetime of seconds and values of nearly 0; a long history raises the
// expectation to its repeat customers' average span.
func TestLifetimeValueFloors(t *testing.T) {
	const year = 365 * 24 * time.Hour
	now := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	h := &history{}
	h.now.Store(now.UnixMilli())
	sys := startSystem(t, servicetest.OwnRedis, func(o *servicetest.Options) { o.Now = h.clock })

	type order struct {
		ago   time.Duration
		units int64
	}
	// check places each customer's orders in a tenant of their own and compares every value with
	// the hand-computed purchase frequency, expected years and lifetime value (EUR units).
	check := func(t *testing.T, buyers map[string][]order, years float64, want map[string][2]float64) {
		t.Helper()
		tenant, key := sys.NewKey(t, "", salesScopes...)
		ids := map[string]string{}
		var customers []string
		var orders []*salesv1.Order
		for name, os := range buyers {
			id := customerIDAt(now.Add(-10 * year))
			ids[name], customers = id, append(customers, id)
			for _, o := range os {
				at := now.Add(-o.ago)
				orders = append(orders, &salesv1.Order{Id: uuid.NewString(), CustomerId: id, CurrencyCode: "EUR",
					Lines: []*salesv1.OrderLine{{ProductId: uuid.NewString(), Quantity: 1, UnitPrice: money("EUR", o.units*1e9), Total: money("EUR", o.units*1e9)}},
					Total: money("EUR", o.units*1e9), CreateTime: timestamppb.New(at), UpdateTime: timestamppb.New(at), Etag: "1"})
			}
		}
		place(t, sys, tenant, orders)
		independent := independentValues(customers, orders, now)
		checkValues(t, sys, key, independent)
		cl, ctx := sys.sales(key)
		for name, w := range want {
			got, err := cl.GetCustomerValue(ctx, &salesv1.GetCustomerValueRequest{CustomerId: ids[name]})
			if err != nil {
				t.Fatal(err)
			}
			v := got.GetValue()
			ltv := v.GetCurrencies()[0].GetLifetimeValue()
			if math.Abs(v.GetPurchaseFrequency()-w[0]) > 1e-9 || math.Abs(v.GetExpectedLifetimeYears()-years) > 1e-9 ||
				math.Abs(float64(ltv.GetUnits())+float64(ltv.GetNanos())/1e9-w[1]) > 1e-6 {
				t.Errorf("%s: frequency %v, expected years %v, lifetime value %v; want %v, %v, %v EUR",
					name, v.GetPurchaseFrequency(), v.GetExpectedLifetimeYears(), ltv, w[0], years, w[1])
			}
		}
	}

	t.Run("repeat orders seconds apart", func(t *testing.T) {
		// Repeat customers' average span: 5 s. Tenure floor and lifetime floor: a year each, so
		// the lifetime value of a customer in their first year is what they spent.
		check(t, map[string][]order{
			"a": {{10 * time.Second, 100}, {5 * time.Second, 100}},
			"b": {{time.Minute, 40}, {time.Minute - 5*time.Second, 60}},
			"c": {{time.Hour, 300}},
		}, 1, map[string][2]float64{"a": {2, 200}, "b": {2, 100}, "c": {1, 300}})
	})
	t.Run("long history", func(t *testing.T) {
		// Spans of 5 and 1 years: the tenant expects 3.
		check(t, map[string][]order{
			"d": {{6 * year, 1000}, {year, 1000}},   // 1000 x 2/6 a year x 3 = 1000
			"e": {{3 * year, 500}, {2 * year, 500}}, // 500 x 2/3 a year x 3 = 1000
			"f": {{30 * 24 * time.Hour, 500}},       // 500 x 1 a year (tenure floor) x 3 = 1500
		}, 3, map[string][2]float64{"d": {1.0 / 3, 1000}, "e": {2.0 / 3, 1000}, "f": {1, 1500}})
	})
}

func TestCustomerValueOverRESTAndTheCustomer360(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, foreign := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "VAL", "Value", 0)
	_, _, customer := sys.dealParties(t, key, "value@example.com")

	potential := sys.OK(t, http.MethodGet, "/v1/customers/"+customer+"/value", key, "")
	if str(potential, "customerType") != "CUSTOMER_TYPE_POTENTIAL" || potential["orderCount"] != nil {
		t.Fatalf("value before any order = %v, want a POTENTIAL customer without orders", potential)
	}
	// Orders at once serialize on the customer's value: none is lost.
	const concurrent = 6
	var g errgroup.Group
	for i := range concurrent {
		g.Go(func() error {
			r := sys.Do(t, http.MethodPost, "/v1/orders", key, fmt.Appendf(nil, `{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":%d}]}`, customer, product, i+1))
			if r.Status != http.StatusOK {
				return fmt.Errorf("order %d: %d %s", i, r.Status, r.Body)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	v := sys.OK(t, http.MethodGet, "/v1/customers/"+customer+"/value", key, "")
	eur := v["currencies"].([]any)[0].(map[string]any)
	// 1+2+...+6 = 21 units at 10.50 EUR: 220.50, 36.75 an order.
	if str(v, "orderCount") != "6" || str(v, "customerType") != "CUSTOMER_TYPE_LOYAL" || str(obj(eur, "revenue"), "units") != "220" ||
		str(obj(eur, "averageOrderValue"), "units") != "36" || obj(eur, "averageOrderValue")["nanos"] != float64(75e7) || str(v, "mainCurrency") != "EUR" {
		t.Fatalf("value after %d concurrent orders = %v", concurrent, v)
	}
	if r := obj(v, "rfm"); r["recency"] != float64(1) || r["frequency"] != float64(1) || r["monetary"] != float64(1) {
		t.Fatalf("the tenant's only buyer has RFM %v, want 1/1/1", r)
	}
	if n := len(sys.events(t, tenant, "sales.customer.value_changed")); n != concurrent {
		t.Fatalf("%d value_changed events, want %d", n, concurrent)
	}
	c360 := sys.OK(t, http.MethodGet, "/v1/customers/"+customer, key, "")
	if got := obj(obj(c360, "deals"), "value"); str(got, "orderCount") != "6" {
		t.Fatalf("the customer 360's value = %v", got)
	}

	sys.Fails(t, http.MethodGet, "/v1/customers/"+customer+"/value", foreign, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodGet, "/v1/customers/"+uuid.NewString()+"/value", key, "", http.StatusNotFound, "NOT_FOUND")
	details := sys.Fails(t, http.MethodGet, "/v1/customers/not-a-uuid/value", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	if !fieldViolation(details, "customerId") {
		t.Fatalf("a bad id's details = %v, want a violation of customer_id", details)
	}
}

// fieldViolation reports whether error details name a violation of field.
func fieldViolation(details []any, field string) bool {
	for _, d := range details {
		for _, v := range asSlice(d.(map[string]any)["fieldViolations"]) {
			if str(v.(map[string]any), "field") == field {
				return true
			}
		}
	}
	return false
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// TestValuesCombineOnMerge: when marketing merges two customers, sales combines their values into
// the survivor's (delivered twice: once), equal to the value of one customer who placed every
// order of both, and the merged customer's value and rankings are gone.
func TestValuesCombineOnMerge(t *testing.T) {
	h := &history{}
	end := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	h.now.Store(end.UnixMilli())
	sys := startSystem(t, servicetest.OwnRedis, func(o *servicetest.Options) { o.Now = h.clock })
	tenant, key := sys.NewKey(t, "", salesScopes...)
	rng := mathrand.New(mathrand.NewPCG(14, 13))
	start := end.AddDate(-1, 0, 0)
	for range 60 {
		seen := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start) - 24*time.Hour)))).Truncate(time.Millisecond)
		h.customers, h.seen = append(h.customers, customerIDAt(seen)), append(h.seen, seen)
	}
	h.generateOrders(rng, 400, start, end)
	place(t, sys, tenant, h.orders)
	// The survivor is the customer seen first, so the combined first sight is its own.
	survivor, merged := h.customers[0], h.customers[1]
	if h.seen[1].Before(h.seen[0]) {
		survivor, merged = merged, survivor
	}

	if n := slices.IndexFunc(h.orders, func(o *salesv1.Order) bool { return o.GetCustomerId() == merged }); n < 0 {
		t.Fatal("the generated history has no order of the merged customer")
	}
	deps := sys.Suite.Deps
	env := sales.Env{Store: redisstore.New(deps.Redis, deps.Keys), Now: h.clock,
		Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}}
	_, ev, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(context.Background(),
		marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged}), tenant, survivor, end)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := events.Decode(ev)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, sub := range events.Subscribe("sales", sales.NewReactions(env).Routes()...) {
			if err := sub.Handle(context.Background(), decoded); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Independently: the merged customer's orders are the survivor's, with the earlier first sight.
	var combined []*salesv1.Order
	for _, o := range h.orders {
		if o.GetCustomerId() == merged {
			o = proto.CloneOf(o)
			o.CustomerId = survivor
		}
		combined = append(combined, o)
	}
	want := independentValues(h.customers, combined, end)
	delete(want, merged)
	checkValues(t, sys, key, want)
	c, ctx := sys.sales(key)
	if _, err := c.GetCustomerValue(ctx, &salesv1.GetCustomerValueRequest{CustomerId: merged}); status.Code(err) != codes.NotFound {
		t.Fatalf("the merged customer's value: %v, want NOT_FOUND", err)
	}
}

// TestAnAdvocateIsLoyal: DESIGN §5's LOYAL is "repeat, client or advocate". A customer of one
// one-time order is IMPULSIVE; once marketing moves them to ADVOCATE (an NPS promoter), sales'
// reaction to marketing.lifecycle.stage_changed makes them LOYAL, announces the new facts once
// (delivered twice), and moves to other stages change nothing.
func TestAnAdvocateIsLoyal(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "ADV", "Advice", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	_, _, customer := sys.dealParties(t, key, "advocate@example.com")
	sys.OK(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":1}]}`, customer, product))
	typeOf := func() string {
		v := sys.OK(t, http.MethodGet, "/v1/customers/"+customer+"/value", key, "")
		if str(v, "orderCount") != "1" {
			t.Fatalf("value = %v, want one order", v)
		}
		return str(v, "customerType")
	}
	if got := typeOf(); got != "CUSTOMER_TYPE_IMPULSIVE" {
		t.Fatalf("one order right after being seen: %s, want CUSTOMER_TYPE_IMPULSIVE", got)
	}
	deps := sys.Suite.Deps
	env := sales.Env{Store: redisstore.New(deps.Redis, deps.Keys), Now: time.Now,
		Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}}
	moveTo := func(from, to marketingv1.LifecycleStage) {
		_, ev, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(context.Background(),
			marketingv1.EventLifecycleStageChanged.Of(&marketingv1.LifecycleStageChanged{CustomerId: customer,
				Move: &marketingv1.StageMove{From: from, To: to, Cause: "support.nps.recorded"}}), tenant, customer, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := events.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			for _, sub := range events.Subscribe("sales", sales.NewReactions(env).Routes()...) {
				if err := sub.Handle(context.Background(), decoded); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	moveTo(marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT, marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER)
	if got, n := typeOf(), len(sys.events(t, tenant, "sales.customer.value_changed")); got != "CUSTOMER_TYPE_IMPULSIVE" || n != 1 {
		t.Fatalf("after a move to FIRST_TIME_CUSTOMER: %s and %d value_changed events, want CUSTOMER_TYPE_IMPULSIVE and 1", got, n)
	}
	moveTo(marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE)
	if got := typeOf(); got != "CUSTOMER_TYPE_LOYAL" {
		t.Fatalf("an advocate of one order: %s, want CUSTOMER_TYPE_LOYAL", got)
	}
	changed := sys.events(t, tenant, "sales.customer.value_changed")
	if len(changed) != 2 {
		t.Fatalf("%d value_changed events, want 2 (the order, then the advocate once)", len(changed))
	}
	var last salesv1.CustomerValueChanged
	if err := changed[1].GetPayload().UnmarshalTo(&last); err != nil {
		t.Fatal(err)
	}
	if v := last.GetValue(); !v.GetAdvocate() || v.GetOrderCount() != 1 {
		t.Fatalf("the announced facts = %v, want an advocate of one order", v)
	}
}

// readCost is what one GetCustomerValue costs Redis in a tenant: round trips and commands.
func readCost(t *testing.T, sys *system, tenant, customer string) (int, []string) {
	t.Helper()
	counter := &redistest.Commands{}
	rdb := redistest.Client(t)
	rdb.AddHook(counter)
	values := sales.NewValues(sales.Env{Store: redisstore.New(rdb, sys.Suite.Deps.Keys), Now: time.Now})
	for range 2 { // the first read also opens the connection: the second is counted
		counter.Take()
		if _, err := values.Get(context.Background(), tenant, customer); err != nil {
			t.Fatal(err)
		}
	}
	return counter.Trips(), counter.Take()
}

// TestCustomerValueReadIsFlat: reading a value costs the same round trips and commands (counts
// and O(log n) rank lookups, never a scan) in a tenant of 20 customers and one of 2,000.
func TestCustomerValueReadIsFlat(t *testing.T) {
	sys := startSystem(t)
	rng := mathrand.New(mathrand.NewPCG(14, 17))
	end := time.Now()
	start := end.AddDate(-1, 0, 0)
	var costs []string
	for _, size := range []int{20, 2000} {
		tenant, _ := sys.NewKey(t, "", salesScopes...)
		h := &history{}
		for range size {
			seen := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start) - 24*time.Hour)))).Truncate(time.Millisecond)
			h.customers, h.seen = append(h.customers, customerIDAt(seen)), append(h.seen, seen)
		}
		h.generateOrders(rng, size*2, start, end)
		place(t, sys, tenant, h.orders)
		trips, commands := readCost(t, sys, tenant, h.orders[0].GetCustomerId())
		if trips != 2 {
			t.Errorf("a value read at %d customers took %d round trips, want 2", size, trips)
		}
		costs = append(costs, fmt.Sprint(commands))
	}
	if costs[0] != costs[1] {
		t.Fatalf("a value read costs %s at 20 customers and %s at 2,000", costs[0], costs[1])
	}
}
