package marketing_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestClosedDealsCountForTheirCampaign(t *testing.T) {
	f := newReactionFixture(t)
	camp := f.campaign(t, "deals")
	opp := func(campaign string) *salesv1.Opportunity {
		return &salesv1.Opportunity{Id: uuid.NewString(), CampaignId: campaign}
	}
	f.deliverTwice(t, f.publish(t, salesv1.EventOpportunityWon.Of(&salesv1.OpportunityWon{Opportunity: opp(camp.GetId())}), ""))
	f.deliverTwice(t, f.publish(t, salesv1.EventOpportunityWon.Of(&salesv1.OpportunityWon{Opportunity: opp(camp.GetId())}), ""))
	f.deliverTwice(t, f.publish(t, salesv1.EventOpportunityLost.Of(&salesv1.OpportunityLost{Opportunity: opp(camp.GetId())}), ""))
	f.deliverTwice(t, f.publish(t, salesv1.EventOpportunityLost.Of(&salesv1.OpportunityLost{Opportunity: opp("")}), ""))
	f.deliverTwice(t, f.publish(t, salesv1.EventOpportunityWon.Of(&salesv1.OpportunityWon{Opportunity: opp(uuid.NewString())}), ""))
	if p := f.performance(t, camp.GetId()); p.GetWonDeals() != 2 || p.GetLostDeals() != 1 {
		t.Fatalf("won %d lost %d, want 2 and 1", p.GetWonDeals(), p.GetLostDeals())
	}
}

// TestAttributionModelsAddUpToTheRevenue captures generated leads through several campaigns,
// places their orders, and checks each model against the orders: first and last touch per
// campaign exactly, linear within a nano per order of the exact proportional share, and every
// model's total across campaigns equal to the revenue to the nano.
func TestAttributionModelsAddUpToTheRevenue(t *testing.T) {
	f := newReactionFixture(t)
	rng := rand.New(rand.NewPCG(14, 7))
	var camps []string
	for i := range 3 {
		camps = append(camps, f.campaign(t, fmt.Sprint("touch ", i)).GetId())
	}
	firstTouch, lastTouch := map[string]*big.Int{}, map[string]*big.Int{}
	linearExact := map[string]*big.Rat{}
	for _, c := range camps {
		firstTouch[c], lastTouch[c], linearExact[c] = new(big.Int), new(big.Int), new(big.Rat)
	}
	revenue, orders := new(big.Int), 0
	for i := range 30 {
		email := fmt.Sprintf("multi%d@example.com", i)
		touches := map[string]int64{}
		var seq []string
		for range 1 + rng.IntN(5) {
			c := camps[rng.IntN(len(camps))]
			seq = append(seq, c)
			touches[c]++
		}
		var lead *marketing.Lead
		for _, c := range seq {
			lead = f.capture(t, email, c, "")
		}
		for range 1 + rng.IntN(2) {
			total := eur(rng.Int64N(5000), int32(rng.IntN(1e9)))
			f.deliverTwice(t, f.placeOrder(t, lead.GetCustomerId(), total))
			n := exactNanos(total)
			revenue.Add(revenue, n)
			orders++
			firstTouch[seq[0]].Add(firstTouch[seq[0]], n)
			lastTouch[seq[len(seq)-1]].Add(lastTouch[seq[len(seq)-1]], n)
			for c, k := range touches {
				linearExact[c].Add(linearExact[c], new(big.Rat).SetFrac(new(big.Int).Mul(n, big.NewInt(k)), big.NewInt(int64(len(seq)))))
			}
		}
	}
	sums := map[string]*big.Int{"first": new(big.Int), "last": new(big.Int), "linear": new(big.Int)}
	for _, c := range camps {
		p := f.performance(t, c)
		first, last, linear := exactNanos(p.GetFirstTouchRevenue()), exactNanos(p.GetLastTouchRevenue()), exactNanos(p.GetLinearRevenue())
		if first.Cmp(firstTouch[c]) != 0 || last.Cmp(lastTouch[c]) != 0 {
			t.Errorf("campaign %s: first %v last %v, want %v and %v", c, first, last, firstTouch[c], lastTouch[c])
		}
		if off := new(big.Rat).Sub(new(big.Rat).SetInt(linear), linearExact[c]); new(big.Rat).Abs(off).Cmp(big.NewRat(int64(orders), 1)) > 0 {
			t.Errorf("campaign %s: linear %v, exact %v: more than a nano per order off", c, linear, linearExact[c].FloatString(2))
		}
		sums["first"].Add(sums["first"], first)
		sums["last"].Add(sums["last"], last)
		sums["linear"].Add(sums["linear"], linear)
	}
	for model, sum := range sums {
		if sum.Cmp(revenue) != 0 {
			t.Errorf("%s-touch revenue adds up to %v nanos over the campaigns, want the orders' %v", model, sum, revenue)
		}
	}
}

func exactNanos(m *typev1.Money) *big.Int {
	return new(big.Int).Add(new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(1e9)), big.NewInt(int64(m.GetNanos())))
}
