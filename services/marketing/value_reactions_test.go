package marketing_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// generatedValue is a customer's value facts as sales would send them after its orders.
func generatedValue(rng *rand.Rand, customer string, now time.Time) *salesv1.CustomerValue {
	orders := int64(1 + rng.IntN(6))
	first := now.Add(-time.Duration(rng.Int64N(int64(400 * 24 * time.Hour)))).Truncate(time.Millisecond)
	last := first
	if orders > 1 {
		last = first.Add(time.Duration(rng.Int64N(int64(now.Sub(first))))).Truncate(time.Millisecond)
	}
	v := &salesv1.CustomerValue{CustomerId: customer, OrderCount: orders, DiscountedOrderCount: rng.Int64N(orders + 1),
		FirstOrderTime: timestamppb.New(first), LastOrderTime: timestamppb.New(last), Recurring: rng.IntN(8) == 0,
		FirstSeenTime: timestamppb.New(first.Add(-time.Duration(rng.Int64N(int64(72 * time.Hour))))), Etag: fmt.Sprint(orders)}
	currencies := []string{"EUR", "USD"}[:1+rng.IntN(2)]
	left := orders
	for i, c := range currencies {
		n := left
		if i < len(currencies)-1 {
			n = 1 + rng.Int64N(left)
			if n == left {
				n = left - 1
			}
			if n == 0 {
				continue
			}
		}
		left -= n
		v.Currencies = append(v.Currencies, &salesv1.CurrencyValue{CurrencyCode: c, OrderCount: n,
			Revenue: &typev1.Money{CurrencyCode: c, Units: rng.Int64N(20000), Nanos: int32(rng.IntN(1e9))}})
	}
	best := v.Currencies[0]
	for _, c := range v.Currencies {
		if c.GetOrderCount() > best.GetOrderCount() {
			best = c
		}
	}
	v.MainCurrency = best.GetCurrencyCode()
	return v
}

// independentRanks ranks every customer's facts by sorting, without the kept indexes.
func independentRanks(values map[string]*salesv1.CustomerValue) map[string]salesv1.ValueRanks {
	var lasts, counts []int64
	monetary := map[string][]*big.Int{}
	var span, repeat int64
	revenue := func(v *salesv1.CustomerValue) *big.Int {
		for _, c := range v.GetCurrencies() {
			if c.GetCurrencyCode() == v.GetMainCurrency() {
				return new(big.Int).Add(new(big.Int).Mul(big.NewInt(c.GetRevenue().GetUnits()), big.NewInt(1e9)), big.NewInt(int64(c.GetRevenue().GetNanos())))
			}
		}
		return nil
	}
	for _, v := range values {
		lasts, counts = append(lasts, v.GetLastOrderTime().AsTime().UnixMilli()), append(counts, v.GetOrderCount())
		monetary[v.GetMainCurrency()] = append(monetary[v.GetMainCurrency()], revenue(v))
		if v.GetOrderCount() >= 2 {
			span += v.GetLastOrderTime().AsTime().Sub(v.GetFirstOrderTime().AsTime()).Milliseconds()
			repeat++
		}
	}
	slices.Sort(lasts)
	slices.Sort(counts)
	below := func(s []int64, x int64) int64 {
		return int64(sort.Search(len(s), func(i int) bool { return s[i] >= x }))
	}
	out := map[string]salesv1.ValueRanks{}
	for id, v := range values {
		m := monetary[v.GetMainCurrency()]
		r := revenue(v)
		var less int64
		for _, x := range m {
			if x.Cmp(r) < 0 {
				less++
			}
		}
		out[id] = salesv1.ValueRanks{Customers: int64(len(lasts)), RecencyBelow: below(lasts, v.GetLastOrderTime().AsTime().UnixMilli()),
			FrequencyBelow: below(counts, v.GetOrderCount()), MonetaryCustomers: int64(len(m)), MonetaryBelow: less,
			SpanSum: span, RepeatCustomers: repeat}
	}
	return out
}

// TestSegmentsOnValue feeds generated value events (some redelivered, some late) to marketing,
// then pages through segments on customer type, RFM, order count and lifetime value, with and
// without consent, and compares the members with an independent evaluation.
func TestSegmentsOnValue(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(14, 9))
	now := time.Now()
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	segments := marketing.NewSegments(f.store, pub, time.Now)
	values := map[string]*salesv1.CustomerValue{}
	leadOf, emailConsent := map[string]string{}, map[string]bool{}
	for i := range 240 {
		consent := rng.IntN(2) == 0
		lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: fmt.Sprintf("value%d@example.com", i), Channel: typev1.Channel_CHANNEL_WEB,
			Consent: []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: consent}}})
		if err != nil {
			t.Fatal(err)
		}
		leadOf[lead.GetCustomerId()], emailConsent[lead.GetCustomerId()] = lead.GetId(), consent
		if i%6 == 0 {
			continue // no order: POTENTIAL, no scores
		}
		v := generatedValue(rng, lead.GetCustomerId(), now)
		values[lead.GetCustomerId()] = v
		if v.GetOrderCount() > 1 && i%3 == 0 { // an earlier snapshot arrives late: it changes nothing
			older := proto.CloneOf(v)
			older.OrderCount, older.Etag = v.GetOrderCount()-1, fmt.Sprint(v.GetOrderCount()-1)
			f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: v}), lead.GetCustomerId()))
			f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: older}), lead.GetCustomerId()))
			continue
		}
		if i%5 == 2 || i%5 == 3 { // becomes an advocate: the same orders, a later snapshot (LOYAL)
			advocate := proto.CloneOf(v)
			advocate.Advocate, advocate.Etag = true, v.GetEtag()+"a"
			first, second := v, advocate // the advocate's snapshot after the order's
			if i%5 == 3 {
				first, second = advocate, v // the order's arrives late: it changes nothing
			}
			values[lead.GetCustomerId()] = advocate
			f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: first}), lead.GetCustomerId()))
			f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: second}), lead.GetCustomerId()))
			continue
		}
		ev := f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: v}), lead.GetCustomerId())
		if i%20 == 1 { // a redelivery changes nothing (checking it reads every key: a sample)
			f.deliverTwice(t, ev)
		} else {
			f.handle(t, ev)
		}
	}
	ranks := independentRanks(values)
	eur := func(units int64) *typev1.Money { return &typev1.Money{CurrencyCode: "EUR", Units: units} }
	four, two := int32(4), int32(2)
	minOrders, maxOrders, one := int64(2), int64(4), int64(1)
	rules := []struct {
		name    string
		rule    *marketingv1.SegmentRule
		channel typev1.Channel
	}{
		{"loyal", &marketingv1.SegmentRule{CustomerTypes: []string{"CUSTOMER_TYPE_LOYAL"}, MaxOrders: &one}, 0}, // advocates of one order, and clients
		{"loyal, recent, e-mail", &marketingv1.SegmentRule{CustomerTypes: []string{"CUSTOMER_TYPE_LOYAL"}, MinRecency: &four}, typev1.Channel_CHANNEL_EMAIL},
		{"two to four orders", &marketingv1.SegmentRule{MinOrders: &minOrders, MaxOrders: &maxOrders, MinMonetary: &two}, 0},
		{"worth 5,000 EUR or more", &marketingv1.SegmentRule{MinLifetimeValue: eur(5000)}, 0},
		{"worth at most 1,000 EUR", &marketingv1.SegmentRule{MaxLifetimeValue: eur(1000)}, 0},
		{"potential or new", &marketingv1.SegmentRule{CustomerTypes: []string{"CUSTOMER_TYPE_POTENTIAL", "CUSTOMER_TYPE_NEW"}}, 0},
		{"frequent discount hunters", &marketingv1.SegmentRule{CustomerTypes: []string{"CUSTOMER_TYPE_DISCOUNT"}, MinFrequency: &two}, 0},
	}
	for _, tc := range rules {
		seg, err := segments.Create(ctx, f.tenant, &marketing.Segment{DisplayName: tc.name, Rule: tc.rule, ContactChannel: tc.channel})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for customer, lead := range leadOf {
			var v *salesv1.CustomerValue
			if values[customer] != nil {
				v = salesv1.EvaluateValue(values[customer], ranks[customer], time.Now())
			}
			if tc.channel == typev1.Channel_CHANNEL_EMAIL && !emailConsent[customer] {
				continue
			}
			if independentMatch(tc.rule, v, time.Now()) {
				want = append(want, lead)
			}
		}
		var got []string
		var cursor *marketing.MemberCursor
		for pages := 0; ; pages++ {
			members, next, err := segments.Members(ctx, f.tenant, seg.GetId(), cursor, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				got = append(got, m.GetId())
			}
			if cursor = next; cursor == nil || pages > 100 {
				break
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: %d members, want %d (and some): %v vs %v", tc.name, len(got), len(want), got, want)
		}
	}
}

// independentMatch evaluates a value rule on its own terms.
func independentMatch(r *marketingv1.SegmentRule, v *salesv1.CustomerValue, now time.Time) bool {
	typ, orders := "CUSTOMER_TYPE_POTENTIAL", int64(0)
	var rfm *salesv1.RfmScores
	ltv := map[string]*big.Rat{}
	if v != nil {
		typ, orders, rfm = v.GetCustomerType().String(), v.GetOrderCount(), v.GetRfm()
		for _, c := range v.GetCurrencies() {
			ltv[c.GetCurrencyCode()] = big.NewRat(c.GetLifetimeValue().GetUnits()*1e9+int64(c.GetLifetimeValue().GetNanos()), 1)
		}
	}
	money := func(m *typev1.Money) *big.Rat { return big.NewRat(m.GetUnits()*1e9+int64(m.GetNanos()), 1) }
	value := func(currency string) *big.Rat {
		if x := ltv[currency]; x != nil {
			return x
		}
		return new(big.Rat)
	}
	switch {
	case len(r.GetCustomerTypes()) > 0 && !slices.Contains(r.GetCustomerTypes(), typ),
		r.MinRecency != nil && rfm.GetRecency() < r.GetMinRecency(),
		r.MinFrequency != nil && rfm.GetFrequency() < r.GetMinFrequency(),
		r.MinMonetary != nil && rfm.GetMonetary() < r.GetMinMonetary(),
		r.MinOrders != nil && orders < r.GetMinOrders(),
		r.MaxOrders != nil && orders > r.GetMaxOrders(),
		r.GetMinLifetimeValue() != nil && value(r.GetMinLifetimeValue().GetCurrencyCode()).Cmp(money(r.GetMinLifetimeValue())) < 0,
		r.GetMaxLifetimeValue() != nil && value(r.GetMaxLifetimeValue().GetCurrencyCode()).Cmp(money(r.GetMaxLifetimeValue())) > 0:
		return false
	}
	return true
}

// TestAMergeTakesTheMergedValueOutOfTheHistory: the repeat customers' history (the span and count
// that value ranks read) sums the values marketing keeps. A merge removes the merged customer's
// value, and sales then restates the survivor with the combined orders: the history must equal an
// independent sum over the values kept, and a redelivered merge changes nothing.
func TestAMergeTakesTheMergedValueOutOfTheHistory(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 4))
	now := time.Now()
	values := map[string]*salesv1.CustomerValue{}
	var customers []string
	for i := range 6 {
		customer := f.capture(t, fmt.Sprintf("merge-value%d@example.com", i), "", "").GetCustomerId()
		v := generatedValue(rng, customer, now)
		for v.GetOrderCount() < 2 { // both sides of the merge are repeat customers
			v = generatedValue(rng, customer, now)
		}
		values[customer] = v
		customers = append(customers, customer)
		f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: v}), customer))
	}
	history := func() (span, repeat int64) {
		t.Helper()
		got, err := f.rdb.HMGet(ctx, f.keys.Scope("marketing", f.tenant).Key("value-history"), "span_ms", "repeat").Result()
		if err != nil {
			t.Fatal(err)
		}
		n := func(v any) int64 { s, _ := v.(string); x, _ := strconv.ParseInt(s, 10, 64); return x }
		return n(got[0]), n(got[1])
	}
	independent := func() (span, repeat int64) {
		for _, v := range values {
			if v.GetOrderCount() >= 2 {
				span += v.GetLastOrderTime().AsTime().Sub(v.GetFirstOrderTime().AsTime()).Milliseconds()
				repeat++
			}
		}
		return span, repeat
	}
	check := func(when string) {
		t.Helper()
		gotSpan, gotRepeat := history()
		wantSpan, wantRepeat := independent()
		if gotSpan != wantSpan || gotRepeat != wantRepeat {
			t.Fatalf("%s: history span %d, repeat %d; want %d, %d", when, gotSpan, gotRepeat, wantSpan, wantRepeat)
		}
	}
	check("before the merge")

	survivor, merged := customers[0], customers[1]
	f.deliverTwice(t, f.publish(t, marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged}), survivor))
	s, m := values[survivor], values[merged]
	delete(values, merged)
	check("after the merge, before sales restates the survivor")

	combined := proto.CloneOf(s) // as sales restates the survivor: both customers' orders
	combined.OrderCount = s.GetOrderCount() + m.GetOrderCount()
	if m.GetLastOrderTime().AsTime().After(s.GetLastOrderTime().AsTime()) {
		combined.LastOrderTime = m.GetLastOrderTime()
	}
	if m.GetFirstOrderTime().AsTime().Before(s.GetFirstOrderTime().AsTime()) {
		combined.FirstOrderTime = m.GetFirstOrderTime()
	}
	combined.Etag = fmt.Sprint(combined.GetOrderCount())
	values[survivor] = combined
	f.handle(t, f.publish(t, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: combined}), survivor))
	check("after sales restated the survivor")
}
