package marketing

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// CampaignTally is what one event adds to a campaign's counters.
type CampaignTally struct {
	CampaignID string
	// RevenueNanos is revenue in nano units of Currency; Currency is empty when it is the
	// campaign's own (the counter performance shows).
	RevenueNanos        int64
	Currency            string
	WonDeals, LostDeals int64
}

// attributeRevenue adds the order's total to the won revenue of the campaigns that touched the
// customer's lead first and last (once each), or to the order's own campaign without a lead.
func (r *Reactions) attributeRevenue(ctx context.Context, tenant string, ev *eventv1.Event, order *salesv1.Order, lead *Lead) error {
	total := order.GetTotal()
	nanos := money.Nanos(total)
	if nanos.Sign() <= 0 {
		return nil
	}
	if !nanos.IsInt64() {
		return fmt.Errorf("order %s: total too large to count", order.GetId())
	}
	ids := []string{order.GetCampaignId()}
	if lead != nil {
		ids = []string{lead.GetFirstTouch().GetCampaignId(), lead.GetLastTouch().GetCampaignId()}
		if ids[0] == "" {
			ids[0] = lead.GetCampaignId()
		}
	}
	tallies, err := r.tallies(ctx, tenant, ids, func(c *Campaign) CampaignTally {
		t := CampaignTally{RevenueNanos: nanos.Int64()}
		if cur := campaignCurrency(c); cur != "" && cur != total.GetCurrencyCode() {
			t.Currency = total.GetCurrencyCode()
		}
		return t
	})
	if err != nil || len(tallies) == 0 {
		return err
	}
	return applied(r.store.CountCampaigns(ctx, tenant, events.EffectOf(ev, "revenue"), tallies))
}

// tallies makes one tally per distinct existing campaign of ids.
func (r *Reactions) tallies(ctx context.Context, tenant string, ids []string, tally func(*Campaign) CampaignTally) ([]CampaignTally, error) {
	var out []CampaignTally
	for i, id := range ids {
		if id == "" || (i > 0 && id == ids[0]) {
			continue
		}
		c, err := r.store.GetCampaign(ctx, tenant, id)
		if errors.Is(err, ErrCampaignNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		t := tally(c)
		t.CampaignID = id
		out = append(out, t)
	}
	return out, nil
}

func campaignCurrency(c *Campaign) string {
	if cur := c.GetBudget().GetCurrencyCode(); cur != "" {
		return cur
	}
	return c.GetActualCost().GetCurrencyCode()
}

// dealWon counts a won deal for the campaign the deal is attributed to.
func (r *Reactions) dealWon(ctx context.Context, ev *eventv1.Event, p *salesv1.OpportunityWon) error {
	return r.countDeal(ctx, ev, p.GetOpportunity(), CampaignTally{WonDeals: 1})
}

// dealLost counts a lost deal for the campaign the deal is attributed to.
func (r *Reactions) dealLost(ctx context.Context, ev *eventv1.Event, p *salesv1.OpportunityLost) error {
	return r.countDeal(ctx, ev, p.GetOpportunity(), CampaignTally{LostDeals: 1})
}

func (r *Reactions) countDeal(ctx context.Context, ev *eventv1.Event, opp *salesv1.Opportunity, count CampaignTally) error {
	tallies, err := r.tallies(ctx, ev.GetTenantId(), []string{opp.GetCampaignId()}, func(*Campaign) CampaignTally { return count })
	if err != nil || len(tallies) == 0 {
		return err
	}
	return applied(r.store.CountCampaigns(ctx, ev.GetTenantId(), events.EffectOf(ev, "deal"), tallies))
}
