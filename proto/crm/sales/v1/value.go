package salesv1

import (
	"fmt"
	"math/big"
	"time"

	"google.golang.org/protobuf/proto"

	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// The customer value's figures that depend on the clock or on the whole tenant are read from the
// kept facts by one definition, here beside the message: sales serves them and marketing selects
// segments on them, and both must agree.

// Windows of the customer type rules (DESIGN §5).
const (
	NewCustomerWindow = 90 * 24 * time.Hour
	ImpulseWindow     = 24 * time.Hour
	valueYear         = 365 * 24 * time.Hour
)

// Floors of the lifetime value's terms, so that a short history is never extrapolated.
const (
	// MinTenure is the least tenure orders per year are computed over: two orders a minute apart
	// are two orders a year, not a million.
	MinTenure = valueYear
	// MinExpectedLifetime is the least expected lifetime, and the expectation of a tenant without
	// repeat customers: repeat customers who ordered seconds apart (a fresh or a test tenant)
	// would otherwise make every lifetime value nearly 0. The tenant's history raises it only
	// once its repeat customers' average span is longer.
	MinExpectedLifetime = valueYear
)

// ValueRanks are a customer's standing among the tenant's ranked customers (those with an order)
// and the tenant's history.
type ValueRanks struct {
	// Customers ranked by recency and frequency; those strictly below the customer in each.
	Customers, RecencyBelow, FrequencyBelow int64
	// Customers ranked in the main currency; those with strictly less revenue in it.
	MonetaryCustomers, MonetaryBelow int64
	// The tenant's history: summed spans of its repeat customers (ms) and their number.
	SpanSum, RepeatCustomers int64
}

// EvaluateValue fills the figures of facts (a copy) that depend on the clock and the tenant:
// averages, lifetime values, purchase frequency, expected lifetime, RFM scores and the type.
func EvaluateValue(facts *CustomerValue, r ValueRanks, now time.Time) *CustomerValue {
	v := proto.CloneOf(facts)
	yearMs := valueYear.Milliseconds()
	tenure := max(now.Sub(v.GetFirstOrderTime().AsTime()), MinTenure)
	// expected lifetime = max(the repeat customers' average span, MinExpectedLifetime), in ms.
	expected := big.NewRat(MinExpectedLifetime.Milliseconds(), 1)
	if r.RepeatCustomers > 0 {
		if mean := big.NewRat(r.SpanSum, r.RepeatCustomers); mean.Cmp(expected) > 0 {
			expected = mean
		}
	}
	v.ExpectedLifetimeYears, _ = new(big.Rat).Quo(expected, big.NewRat(yearMs, 1)).Float64()
	if v.GetOrderCount() > 0 {
		v.PurchaseFrequency = float64(v.GetOrderCount()) / (float64(tenure) / float64(valueYear))
		v.Rfm = &RfmScores{
			Recency:   quintile(r.RecencyBelow, r.Customers),
			Frequency: quintile(r.FrequencyBelow, r.Customers),
			Monetary:  quintile(r.MonetaryBelow, r.MonetaryCustomers),
		}
	}
	// lifetime value = revenue / tenure x expected lifetime, exact in nanos, rounded down.
	factor := new(big.Rat).Quo(expected, big.NewRat(tenure.Milliseconds(), 1))
	for _, c := range v.GetCurrencies() {
		n := nanos(c.GetRevenue())
		c.AverageOrderValue = fromNanos(c.GetCurrencyCode(), new(big.Int).Div(n, big.NewInt(max(c.GetOrderCount(), 1))))
		ltv := new(big.Rat).Mul(new(big.Rat).SetInt(n), factor)
		c.LifetimeValue = fromNanos(c.GetCurrencyCode(), new(big.Int).Div(ltv.Num(), ltv.Denom()))
	}
	v.CustomerType = TypeOf(v, now)
	return v
}

// quintile is the RFM score of a customer with below customers strictly under them among n.
func quintile(below, n int64) int32 {
	if n == 0 {
		return 0
	}
	return int32(1 + 5*below/n)
}

// TypeOf applies the customer type rules in a fixed order, so exactly one type applies.
func TypeOf(v *CustomerValue, now time.Time) CustomerType {
	first := v.GetFirstOrderTime().AsTime()
	switch {
	case v.GetOrderCount() == 0:
		return CustomerType_CUSTOMER_TYPE_POTENTIAL
	case 2*v.GetDiscountedOrderCount() > v.GetOrderCount():
		return CustomerType_CUSTOMER_TYPE_DISCOUNT
	case v.GetOrderCount() >= 2 || v.GetRecurring() || v.GetAdvocate(): // repeat, client or advocate
		return CustomerType_CUSTOMER_TYPE_LOYAL
	case v.GetFirstSeenTime() != nil && impulsive(first.Sub(v.GetFirstSeenTime().AsTime())):
		return CustomerType_CUSTOMER_TYPE_IMPULSIVE
	case now.Sub(first) <= NewCustomerWindow:
		return CustomerType_CUSTOMER_TYPE_NEW
	}
	return CustomerType_CUSTOMER_TYPE_POTENTIAL
}

// impulsive is whether the first order came within a day after the customer was first seen; an
// order from before (history brought in later) is no impulse.
func impulsive(gap time.Duration) bool { return gap >= 0 && gap <= ImpulseWindow }

// MonetaryKey is the sort key of a customer's revenue in their main currency in a monetary index:
// nanos, zero-padded so that byte order is numeric order (revenue is never negative).
func MonetaryKey(v *CustomerValue) (currency, key string) {
	for _, c := range v.GetCurrencies() {
		if c.GetCurrencyCode() == v.GetMainCurrency() {
			return c.GetCurrencyCode(), fmt.Sprintf("%030s", nanos(c.GetRevenue()).String())
		}
	}
	return "", ""
}

// RepeatSpan is a repeat customer's time from first to last order in ms, 0 for anyone else: what
// the customer adds to the tenant's history.
func RepeatSpan(v *CustomerValue) int64 {
	if v.GetOrderCount() < 2 {
		return 0
	}
	return v.GetLastOrderTime().AsTime().Sub(v.GetFirstOrderTime().AsTime()).Milliseconds()
}

func nanos(m *typev1.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// fromNanos is n nano units. Averages never exceed the revenue, which fits a Money; a lifetime
// value is the revenue times expected lifetime over tenure, which would leave int64 units only
// for revenue near that limit.
func fromNanos(currency string, n *big.Int) *typev1.Money {
	units, rem := new(big.Int).QuoRem(n, big.NewInt(1e9), new(big.Int))
	return &typev1.Money{CurrencyCode: currency, Units: units.Int64(), Nanos: int32(rem.Int64())}
}
