// Package money is the one arithmetic on crm.type.v1.Money: exact (in nano units, never floats),
// checked (a result that a Money cannot hold, or amounts in two currencies, is an error, never a
// wrap or a truncation), and rounded down to the nano where it divides.
package money

import (
	"math/big"
	"slices"

	"github.com/crmcycle/crm/pkg/apierr"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Errors of the arithmetic.
var (
	ErrOutOfRange = apierr.New(apierr.InvalidArgument, "AMOUNT_OUT_OF_RANGE",
		"the amount is larger than a money value holds (units are a 64-bit integer)")
	ErrCurrencyMismatch = apierr.New(apierr.InvalidArgument, "CURRENCY_MISMATCH", "amounts in different currencies cannot be combined")
	ErrPercent          = apierr.New(apierr.InvalidArgument, "PERCENT_OUT_OF_RANGE", "a percentage is from 0 to 100")
)

// NanosPerUnit is the number of nano units in one unit.
const NanosPerUnit = 1_000_000_000

var (
	perUnit = big.NewInt(NanosPerUnit)
	hundred = big.NewInt(100)
)

// Zero is no money in a currency.
func Zero(currency string) *typev1.Money { return &typev1.Money{CurrencyCode: currency} }

// Nanos is m in nano units, exact.
func Nanos(m *typev1.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), perUnit)
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// FromNanos is n nano units of a currency; ErrOutOfRange when the units do not fit. Units and
// nanos take the sign of n, as google.type.Money requires.
func FromNanos(currency string, n *big.Int) (*typev1.Money, error) {
	units, rem := new(big.Int).QuoRem(n, perUnit, new(big.Int))
	if !units.IsInt64() {
		return nil, ErrOutOfRange
	}
	return &typev1.Money{CurrencyCode: currency, Units: units.Int64(), Nanos: int32(rem.Int64())}, nil
}

// Int64Nanos is m in nano units as an int64, for counters kept that way; ErrOutOfRange beyond
// about 9.2e9 units.
func Int64Nanos(m *typev1.Money) (int64, error) {
	n := Nanos(m)
	if !n.IsInt64() {
		return 0, ErrOutOfRange
	}
	return n.Int64(), nil
}

// Sum adds amounts of one currency; no amounts is zero.
func Sum(currency string, ms ...*typev1.Money) (*typev1.Money, error) {
	sum := new(big.Int)
	for _, m := range ms {
		if m.GetCurrencyCode() != currency {
			return nil, ErrCurrencyMismatch
		}
		sum.Add(sum, Nanos(m))
	}
	return FromNanos(currency, sum)
}

// Add is a + b, of one currency.
func Add(a, b *typev1.Money) (*typev1.Money, error) { return Sum(a.GetCurrencyCode(), a, b) }

// Times is m multiplied by a quantity.
func Times(m *typev1.Money, quantity int64) (*typev1.Money, error) {
	return FromNanos(m.GetCurrencyCode(), new(big.Int).Mul(Nanos(m), big.NewInt(quantity)))
}

// LessPercent is m less a percentage discount, rounded down to the nano.
func LessPercent(m *typev1.Money, percent int32) (*typev1.Money, error) {
	if percent < 0 || percent > 100 {
		return nil, ErrPercent
	}
	n := new(big.Int).Mul(Nanos(m), big.NewInt(int64(100-percent)))
	// Div rounds toward negative infinity for a positive divisor: down, as promised.
	return FromNanos(m.GetCurrencyCode(), n.Div(n, hundred))
}

// Percent is the given percentage of m, rounded down to the nano.
func Percent(m *typev1.Money, percent int32) (*typev1.Money, error) {
	return LessPercent(m, 100-percent)
}

// Compare is -1, 0 or +1 as a is less than, equal to or more than b, of one currency.
func Compare(a, b *typev1.Money) (int, error) {
	if a.GetCurrencyCode() != b.GetCurrencyCode() {
		return 0, ErrCurrencyMismatch
	}
	return Nanos(a).Cmp(Nanos(b)), nil
}

// Sign is -1, 0 or +1 as m is negative, zero or positive.
func Sign(m *typev1.Money) int { return Nanos(m).Sign() }

// FromInt64Nanos is n nano units of a currency, from a counter kept that way; it always fits.
func FromInt64Nanos(currency string, n int64) *typev1.Money {
	return &typev1.Money{CurrencyCode: currency, Units: n / NanosPerUnit, Nanos: int32(n % NanosPerUnit)}
}

// Per is m shared among count (at least 1), rounded down to the nano.
func Per(m *typev1.Money, count int64) (*typev1.Money, error) {
	if count < 1 {
		return nil, apierr.New(apierr.InvalidArgument, "COUNT_OUT_OF_RANGE", "money is shared among at least one")
	}
	n := Nanos(m)
	return FromNanos(m.GetCurrencyCode(), n.Div(n, big.NewInt(count)))
}

// Allocate splits m among shares in proportion to weights (each at least 0, some above 0), in
// nanos, by the largest remainder method: each share is rounded down, then the nanos left over go
// one each to the shares with the largest remainders (the earlier share on a tie), so the shares
// add up to m exactly.
func Allocate(m *typev1.Money, weights []int64) ([]*typev1.Money, error) {
	total := new(big.Int)
	for _, w := range weights {
		if w < 0 {
			return nil, apierr.New(apierr.InvalidArgument, "WEIGHT_OUT_OF_RANGE", "allocation weights are not negative")
		}
		total.Add(total, big.NewInt(w))
	}
	if total.Sign() == 0 {
		return nil, apierr.New(apierr.InvalidArgument, "WEIGHT_OUT_OF_RANGE", "allocation needs a weight above zero")
	}
	n := Nanos(m)
	shares, remainders := make([]*big.Int, len(weights)), make([]*big.Int, len(weights))
	left := new(big.Int).Set(n)
	for i, w := range weights {
		// Div and Mod are Euclidean: the share rounds down and the remainder is not negative.
		p := new(big.Int).Mul(n, big.NewInt(w))
		shares[i], remainders[i] = new(big.Int).Div(p, total), new(big.Int).Mod(p, total)
		left.Sub(left, shares[i])
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return remainders[b].Cmp(remainders[a]) })
	for _, i := range order[:left.Int64()] {
		shares[i].Add(shares[i], big.NewInt(1))
	}
	out := make([]*typev1.Money, len(weights))
	for i, s := range shares {
		var err error
		if out[i], err = FromNanos(m.GetCurrencyCode(), s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
