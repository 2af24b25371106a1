package marketing_test

import (
	"errors"
	"math"
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestPointsForOrder(t *testing.T) {
	eur := func(units int64, nanos int32) *typev1.Money {
		return &typev1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
	}
	anyCurrency := marketing.DefaultLoyaltyProgram()
	tenPerEuro := &marketing.LoyaltyProgram{PointsPerUnit: 10, CurrencyCode: "EUR"}
	tests := []struct {
		name    string
		program *marketing.LoyaltyProgram
		total   *typev1.Money
		want    int64
		err     error
	}{
		{"whole units", anyCurrency, eur(120, 0), 120, nil},
		{"fractions dropped", anyCurrency, eur(99, 990_000_000), 99, nil},
		{"rate on nano units", tenPerEuro, eur(12, 340_000_000), 123, nil},
		{"any currency by default", anyCurrency, &typev1.Money{CurrencyCode: "JPY", Units: 5000}, 5000, nil},
		{"another currency earns nothing", tenPerEuro, &typev1.Money{CurrencyCode: "USD", Units: 10}, 0, marketing.ErrOrderCurrency},
		{"refund", anyCurrency, eur(-5, 0), 0, nil},
		{"huge total stays exact", tenPerEuro, eur(900_000_000_000, 999_999_999), 9_000_000_000_009, nil},
		{"points beyond a balance are refused, not wrapped", tenPerEuro, eur(math.MaxInt64, 0), 0, marketing.ErrPointsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := marketing.PointsForOrder(tt.program, tt.total)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("got %d, %v; want %d, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestTierFor(t *testing.T) {
	p := &marketing.LoyaltyProgram{SilverPoints: 100, GoldPoints: 200, PlatinumPoints: 300}
	for earned, want := range map[int64]marketingv1.LoyaltyTier{
		0: marketingv1.LoyaltyTier_LOYALTY_TIER_BRONZE, 99: marketingv1.LoyaltyTier_LOYALTY_TIER_BRONZE,
		100: marketingv1.LoyaltyTier_LOYALTY_TIER_SILVER, 250: marketingv1.LoyaltyTier_LOYALTY_TIER_GOLD,
		300: marketingv1.LoyaltyTier_LOYALTY_TIER_PLATINUM,
	} {
		if got := marketing.TierFor(p, earned); got != want {
			t.Errorf("TierFor(%d) = %v, want %v", earned, got, want)
		}
	}
}
