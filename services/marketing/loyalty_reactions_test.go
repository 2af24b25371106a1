package marketing_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestReferredCustomersFirstOrderRewardsTheReferrerOnce(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	referrer := f.capture(t, "ada@example.com", "", "").GetCustomerId()
	f.handle(t, f.placeOrder(t, referrer, eur(10, 0)))
	code, err := f.referrals.Create(ctx, f.tenant, referrer)
	if err != nil {
		t.Fatal(err)
	}
	referred := f.capture(t, "grace@example.com", "", code.GetCode()).GetCustomerId()

	f.deliverTwice(t, f.placeOrder(t, referred, eur(30, 0)))
	if p := f.points(t, referrer); p != 10+marketing.ReferralBonusPoints {
		t.Fatalf("referrer points = %d, want %d", p, 10+marketing.ReferralBonusPoints)
	}
	if lc := f.stage(t, referrer); lc.GetStage() != advocate {
		t.Fatalf("referrer stage = %v, want ADVOCATE", lc.GetStage())
	}
	f.deliverTwice(t, f.placeOrder(t, referred, eur(30, 0)))
	if p := f.points(t, referrer); p != 10+marketing.ReferralBonusPoints {
		t.Fatalf("referrer points after the referred customer's second order = %d, want one bonus only", p)
	}

	// A referrer who is no customer yet gets the bonus but stays where they are.
	prospectReferrer := f.capture(t, "linus@example.com", "", "").GetCustomerId()
	code, err = f.referrals.Create(ctx, f.tenant, prospectReferrer)
	if err != nil {
		t.Fatal(err)
	}
	f.deliverTwice(t, f.placeOrder(t, f.capture(t, "ken@example.com", "", code.GetCode()).GetCustomerId(), eur(5, 0)))
	if lc, p := f.stage(t, prospectReferrer), f.points(t, prospectReferrer); lc.GetStage() != prospect || p != marketing.ReferralBonusPoints {
		t.Fatalf("prospect referrer: %v with %d points, want PROSPECT with the bonus", lc.GetStage(), p)
	}
}

func TestOrderPointsFollowTheTenantsEarnRate(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	_, err := f.loyalty.UpdateProgram(ctx, f.tenant, &marketingv1.LoyaltyProgram{PointsPerUnit: 10, CurrencyCode: "EUR"},
		&fieldmaskpb.FieldMask{Paths: []string{"points_per_unit", "currency_code"}})
	if err != nil {
		t.Fatal(err)
	}
	customer := f.capture(t, "rate@example.com", "", "").GetCustomerId()
	f.deliverTwice(t, f.placeOrder(t, customer, eur(12, 340_000_000)))
	f.deliverTwice(t, f.placeOrder(t, customer, &typev1.Money{CurrencyCode: "USD", Units: 50}))
	if p := f.points(t, customer); p != 123 {
		t.Fatalf("points = %d, want 123 (12.34 EUR at 10 a euro; USD earns nothing)", p)
	}
	if lc := f.stage(t, customer); lc.GetStage() != repeat {
		t.Fatalf("stage = %v, want REPEAT_CUSTOMER: an order that earns no points still counts", lc.GetStage())
	}
}
