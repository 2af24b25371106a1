package marketing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// CampaignTally is what one event adds to a campaign's counters.
type CampaignTally struct {
	CampaignID string
	// RevenueNanos is revenue in nano units of Currency; Currency is empty when it is the
	// campaign's own (the counter performance shows). FirstTouch, LastTouch and Linear are the
	// campaign's revenue under each attribution model, in the same unit.
	RevenueNanos                                 int64
	FirstTouchNanos, LastTouchNanos, LinearNanos int64
	Currency                                     string
	WonDeals, LostDeals                          int64
}

// attributeRevenue credits an order's total to campaigns under three models, each adding up to
// the total across campaigns: first touch (the campaign that reached the customer's lead first),
// last touch (the one that reached it last) and linear (split over the lead's captures, per
// campaign in proportion to its captures, by the largest remainder in nanos). The won revenue
// counts the order once for each of the first and last touch campaigns. A customer without a lead
// is the order's own campaign's in every model. Campaigns that no longer exist are left out.
func (r *Reactions) attributeRevenue(ctx context.Context, tenant string, ev *eventv1.Event, order *salesv1.Order, lead *Lead) error {
	total := order.GetTotal()
	nanos := money.Nanos(total)
	if nanos.Sign() <= 0 {
		return nil
	}
	if !nanos.IsInt64() {
		return fmt.Errorf("order %s: total too large to count", order.GetId())
	}
	first, last := order.GetCampaignId(), order.GetCampaignId()
	touches := map[string]int64{}
	if lead != nil {
		first, last = cmp.Or(lead.GetFirstTouch().GetCampaignId(), lead.GetCampaignId()), lead.GetLastTouch().GetCampaignId()
		var err error
		if touches, err = r.store.LeadTouches(ctx, tenant, lead.GetId()); err != nil {
			return err
		}
	}
	if len(touches) == 0 { // a lead captured before touches were counted, or none
		for _, id := range []string{first, last} {
			if id != "" {
				touches[id] = 1
			}
		}
	}
	ids := slices.Sorted(maps.Keys(touches))
	byID := map[string]*Campaign{}
	for _, id := range append([]string{first, last}, ids...) {
		if _, seen := byID[id]; seen || id == "" {
			continue
		}
		c, err := r.store.GetCampaign(ctx, tenant, id)
		if errors.Is(err, ErrCampaignNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		byID[id] = c
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return byID[id] == nil })
	linear := map[string]int64{}
	if len(ids) > 0 {
		weights := make([]int64, len(ids))
		for i, id := range ids {
			weights[i] = touches[id]
		}
		shares, err := money.Allocate(total, weights)
		if err != nil {
			return err
		}
		for i, id := range ids {
			linear[id], _ = money.Int64Nanos(shares[i])
		}
	}
	var tallies []CampaignTally
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		t := CampaignTally{CampaignID: id, LinearNanos: linear[id]}
		if id == first {
			t.FirstTouchNanos = nanos.Int64()
		}
		if id == last {
			t.LastTouchNanos = nanos.Int64()
		}
		if id == first || id == last {
			t.RevenueNanos = nanos.Int64()
		}
		if cur := campaignCurrency(byID[id]); cur != "" && cur != total.GetCurrencyCode() {
			t.Currency = total.GetCurrencyCode()
		}
		if t != (CampaignTally{CampaignID: id, Currency: t.Currency}) {
			tallies = append(tallies, t)
		}
	}
	if len(tallies) == 0 {
		return nil
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
