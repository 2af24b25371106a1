package marketing_test

import (
	"testing"

	"github.com/google/uuid"

	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
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
