package product

import (
	"math/big"

	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

const nanosPerUnit = 1_000_000_000

// nanos is an amount in nano units, exact.
func nanos(m *typev1.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(nanosPerUnit))
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// money turns nano units back into Money; false when the units do not fit in int64.
func money(currency string, n *big.Int) (*typev1.Money, bool) {
	units, rem := new(big.Int).QuoRem(n, big.NewInt(nanosPerUnit), new(big.Int))
	if !units.IsInt64() {
		return nil, false
	}
	return &typev1.Money{CurrencyCode: currency, Units: units.Int64(), Nanos: int32(rem.Int64())}, true
}

// lineTotal is quantity x unit price less discount percent, rounded down to the nano.
func lineTotal(unit *typev1.Money, quantity int64, discountPercent int32) *big.Int {
	n := new(big.Int).Mul(nanos(unit), big.NewInt(quantity))
	n.Mul(n, big.NewInt(int64(100-discountPercent)))
	// Div rounds toward negative infinity (Euclidean for a positive divisor): down, as promised.
	return n.Div(n, big.NewInt(100))
}

// priceIn is the product's price in a currency: its list price or one of its price book's.
func priceIn(p *Product, currency string) *typev1.Money {
	if p.GetPrice().GetCurrencyCode() == currency {
		return p.GetPrice()
	}
	for _, m := range p.GetAdditionalPrices() {
		if m.GetCurrencyCode() == currency {
			return m
		}
	}
	return nil
}
