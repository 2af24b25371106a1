package money_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/pkg/money"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// The reference is independent of the package: exact rationals of the decimal text, floored to
// the nano, and a range check against a Money's int64 units.

func rat(m *typev1.Money) *big.Rat {
	r, ok := new(big.Rat).SetString(fmt.Sprintf("%d", m.GetUnits()))
	if !ok {
		panic(m)
	}
	return r.Add(r, big.NewRat(int64(m.GetNanos()), 1e9))
}

// want is the Money a rational amount floors to, or nil when its units leave int64.
func want(currency string, r *big.Rat) *typev1.Money {
	scaled := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	n := new(big.Int).Div(scaled.Num(), scaled.Denom()) // floor for a positive denominator
	units := new(big.Int).Quo(n, big.NewInt(1e9))       // toward zero, so nanos share the sign
	if !units.IsInt64() {
		return nil
	}
	nanos := new(big.Int).Sub(n, new(big.Int).Mul(units, big.NewInt(1e9)))
	return &typev1.Money{CurrencyCode: currency, Units: units.Int64(), Nanos: int32(nanos.Int64())}
}

func check(t *testing.T, what string, got *typev1.Money, err error, wantM *typev1.Money) {
	t.Helper()
	if wantM == nil {
		if !errors.Is(err, money.ErrOutOfRange) {
			t.Errorf("%s = %v, %v; want ErrOutOfRange", what, got, err)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if diff := cmp.Diff(wantM, got, protocmp.Transform()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func eur(units int64, nanos int32) *typev1.Money {
	return &typev1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

// compareAll checks every operation on a, b, a quantity and a percentage against the reference.
func compareAll(t *testing.T, a, b *typev1.Money, quantity int64, percent int32) {
	t.Helper()
	sum, err := money.Add(a, b)
	check(t, fmt.Sprintf("%v + %v", a, b), sum, err, want("EUR", new(big.Rat).Add(rat(a), rat(b))))
	prod, err := money.Times(a, quantity)
	check(t, fmt.Sprintf("%v x %d", a, quantity), prod, err, want("EUR", new(big.Rat).Mul(rat(a), big.NewRat(quantity, 1))))
	less, err := money.LessPercent(a, percent)
	check(t, fmt.Sprintf("%v less %d%%", a, percent), less, err, want("EUR", new(big.Rat).Mul(rat(a), big.NewRat(int64(100-percent), 100))))
	part, err := money.Percent(a, percent)
	check(t, fmt.Sprintf("%d%% of %v", percent, a), part, err, want("EUR", new(big.Rat).Mul(rat(a), big.NewRat(int64(percent), 100))))
	if quantity >= 1 {
		per, err := money.Per(a, quantity)
		check(t, fmt.Sprintf("%v per %d", a, quantity), per, err, want("EUR", new(big.Rat).Quo(rat(a), big.NewRat(quantity, 1))))
	}
	if c, err := money.Compare(a, b); err != nil || c != rat(a).Cmp(rat(b)) {
		t.Errorf("Compare(%v, %v) = %d, %v; want %d", a, b, c, err, rat(a).Cmp(rat(b)))
	}
	if n, err := money.Int64Nanos(a); err != nil {
		if want := new(big.Rat).Mul(rat(a), big.NewRat(1e9, 1)); want.Num().IsInt64() {
			t.Errorf("Int64Nanos(%v): %v, want %v", a, err, want)
		}
	} else if big.NewRat(n, 1e9).Cmp(rat(a)) != 0 {
		t.Errorf("Int64Nanos(%v) = %d", a, n)
	} else if back := money.FromInt64Nanos("EUR", n); !cmp.Equal(back, a, protocmp.Transform()) {
		t.Errorf("FromInt64Nanos(Int64Nanos(%v)) = %v", a, back)
	}
}

func TestAgainstRationals(t *testing.T) {
	edges := []*typev1.Money{
		eur(0, 0), eur(0, 1), eur(0, -1), eur(1, 500_000_000), eur(-1, -500_000_000), eur(0, 333_333_333),
		eur(9_223_372_036, 854_775_807), eur(9_223_372_036, 854_775_808), eur(-9_223_372_036, -854_775_808),
		eur(math.MaxInt64, 999_999_999), eur(math.MinInt64, -999_999_999), eur(math.MaxInt64/2+1, 0),
	}
	for _, a := range edges {
		for _, b := range edges {
			for _, q := range []int64{0, 1, 2, 7, -3, 1_000_000, math.MaxInt64} {
				for _, p := range []int32{0, 1, 33, 50, 99, 100} {
					compareAll(t, a, b, q, p)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	amount := func() *typev1.Money {
		units := r.Int64() >> r.IntN(63)
		nanos := r.Int32N(1e9)
		if r.IntN(4) == 0 {
			units, nanos = -units, -nanos
		}
		return eur(units, nanos)
	}
	for range 5_000 {
		compareAll(t, amount(), amount(), r.Int64N(1<<uint(r.IntN(40)+1)), r.Int32N(101))
	}
}

func TestSum(t *testing.T) {
	got, err := money.Sum("EUR", eur(1, 600_000_000), eur(2, 500_000_000), eur(-1, -100_000_000))
	check(t, "sum", got, err, eur(3, 0))
	if got, err := money.Sum("EUR"); err != nil || money.Sign(got) != 0 || got.GetCurrencyCode() != "EUR" {
		t.Errorf("empty sum = %v, %v; want zero EUR", got, err)
	}
	// Above int64 nanos (about 9.2e9 units), where an int64 counter would wrap, the sum is exact.
	got, err = money.Sum("EUR", eur(9_000_000_000, 0), eur(9_000_000_000, 0))
	check(t, "big sum", got, err, eur(18_000_000_000, 0))
	if _, err := money.Sum("EUR", eur(math.MaxInt64, 0), eur(1, 0)); !errors.Is(err, money.ErrOutOfRange) {
		t.Errorf("sum past the largest Money: %v, want ErrOutOfRange", err)
	}
}

func TestCurrencies(t *testing.T) {
	usd := &typev1.Money{CurrencyCode: "USD", Units: 1}
	if _, err := money.Add(eur(1, 0), usd); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("EUR + USD: %v, want ErrCurrencyMismatch", err)
	}
	if _, err := money.Sum("EUR", eur(1, 0), usd); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("sum of EUR and USD: %v, want ErrCurrencyMismatch", err)
	}
	if _, err := money.Compare(eur(1, 0), usd); !errors.Is(err, money.ErrCurrencyMismatch) {
		t.Errorf("compare EUR with USD: %v, want ErrCurrencyMismatch", err)
	}
	if _, err := money.Per(eur(1, 0), 0); err == nil {
		t.Error("sharing among none: no error")
	}
	for _, p := range []int32{-1, 101} {
		if _, err := money.LessPercent(eur(1, 0), p); !errors.Is(err, money.ErrPercent) {
			t.Errorf("less %d%%: %v, want ErrPercent", p, err)
		}
	}
}

// FuzzArithmetic: any amounts, quantity and percentage give the reference's result or a
// classified error, never a panic, a wrap or a truncation.
func FuzzArithmetic(f *testing.F) {
	f.Add(int64(1), int32(5), int64(2), int64(3), int32(7), int32(10))
	f.Add(int64(math.MaxInt64), int32(999_999_999), int64(math.MinInt64), int64(math.MaxInt64), int32(-999_999_999), int32(100))
	f.Fuzz(func(t *testing.T, units int64, nanos int32, otherUnits, quantity int64, otherNanos, percent int32) {
		a, b := eur(units, nanos%1e9), eur(otherUnits, otherNanos%1e9)
		if (a.Units > 0 && a.Nanos < 0) || (a.Units < 0 && a.Nanos > 0) || (b.Units > 0 && b.Nanos < 0) || (b.Units < 0 && b.Nanos > 0) {
			t.Skip("not a valid Money: units and nanos differ in sign")
		}
		if percent < 0 || percent > 100 {
			if _, err := money.LessPercent(a, percent); !errors.Is(err, money.ErrPercent) {
				t.Fatalf("less %d%%: %v, want ErrPercent", percent, err)
			}
			return
		}
		compareAll(t, a, b, quantity, percent)
	})
}

// TestAllocate checks the largest remainder split against exact rationals: the shares add up to
// the amount, each is its exact share rounded down or up by one nano, and only the largest
// remainders were rounded up.
func TestAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	for range 2000 {
		m := &typev1.Money{CurrencyCode: "EUR", Units: rng.Int64N(1e6) - 1e5, Nanos: 0}
		m.Nanos = int32(rng.IntN(1e9))
		if m.Units < 0 {
			m.Nanos = -m.Nanos
		}
		weights := make([]int64, 1+rng.IntN(7))
		var total int64
		for i := range weights {
			weights[i] = rng.Int64N(5)
			total += weights[i]
		}
		if total == 0 {
			weights[0], total = 1, 1
		}
		shares, err := money.Allocate(m, weights)
		if err != nil {
			t.Fatal(err)
		}
		sum := new(big.Int)
		var roundedUp, roundedDown []*big.Rat
		for i, s := range shares {
			got := money.Nanos(s)
			sum.Add(sum, got)
			exact := new(big.Rat).Mul(new(big.Rat).SetInt(money.Nanos(m)), big.NewRat(weights[i], total))
			floor := new(big.Int).Div(exact.Num(), exact.Denom())
			frac := new(big.Rat).Sub(exact, new(big.Rat).SetInt(floor))
			switch new(big.Int).Sub(got, floor).Int64() {
			case 0:
				roundedDown = append(roundedDown, frac)
			case 1:
				roundedUp = append(roundedUp, frac)
			default:
				t.Fatalf("%v by %v: share %d = %v, exact %v", m, weights, i, got, exact.FloatString(3))
			}
		}
		if sum.Cmp(money.Nanos(m)) != 0 {
			t.Fatalf("%v by %v: shares add up to %v", m, weights, sum)
		}
		for _, up := range roundedUp {
			for _, down := range roundedDown {
				if up.Cmp(down) < 0 {
					t.Fatalf("%v by %v: a smaller remainder was rounded up", m, weights)
				}
			}
		}
	}
	if _, err := money.Allocate(money.Zero("EUR"), []int64{0, 0}); err == nil {
		t.Fatal("allocating by zero weights succeeded")
	}
}
