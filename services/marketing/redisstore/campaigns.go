package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.CampaignStore = (*Store)(nil)

// Campaign keys: the campaign, its counters, and its indexes (all, per status, per channel).
func (k leadKeys) campaign(id string) string      { return k.Key("campaign", id) }
func (k leadKeys) campaignStats(id string) string { return k.Key("campaign-stats", id) }

// leadTouches counts a lead's captures per campaign, for multi-touch attribution.
func (k leadKeys) leadTouches(lead string) string { return k.Key("lead-touches", lead) }

// LeadTouches implements marketing.ReactionStore: one HGETALL.
func (s *Store) LeadTouches(ctx context.Context, tenant, lead string) (map[string]int64, error) {
	raw, err := s.rdb.HGetAll(ctx, s.scope(tenant).leadTouches(lead)).Result()
	if err != nil {
		return nil, err
	}
	return counters(raw), nil
}

func (k leadKeys) campaignIndex(ix marketing.CampaignIndex) string {
	switch {
	case ix.Status != 0:
		return k.Key("campaigns", "status", ix.Status.String())
	case ix.Channel != 0:
		return k.Key("campaigns", "channel", ix.Channel.String())
	}
	return k.Key("campaigns")
}

func (k leadKeys) campaignIndexes(c *marketing.Campaign) []commit.Entry {
	return []commit.Entry{
		{Index: k.campaignIndex(marketing.CampaignIndex{}), Member: c.GetId()},
		{Index: k.campaignIndex(marketing.CampaignIndex{Status: c.GetStatus()}), Member: c.GetId()},
		{Index: k.campaignIndex(marketing.CampaignIndex{Channel: c.GetChannel()}), Member: c.GetId()},
	}
}

// Counter fields of a campaign's stats hash.
const (
	statTouches = "touches"
	statLeads   = "leads"
	statMQLs    = "mqls"
	statWins    = "conversions"
	statRevenue = "won_revenue_nanos"
	statFirst   = "first_touch_nanos"
	statLast    = "last_touch_nanos"
	statLinear  = "linear_nanos"
	statWon     = "won_deals"
	statLost    = "lost_deals"
)

// CreateCampaign implements marketing.CampaignStore.
func (s *Store) CreateCampaign(ctx context.Context, tenant string, c *marketing.Campaign, event []byte) error {
	k := s.scope(tenant)
	return commit.New().Save(k.campaign(c.GetId()), c, "", c.GetEtag()).Move(nil, k.campaignIndexes(c)).
		Append(k.Stream(), event).Run(ctx, s.rdb)
}

// UpdateCampaign implements marketing.CampaignStore.
func (s *Store) UpdateCampaign(ctx context.Context, tenant string, c, prev *marketing.Campaign, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().Save(k.campaign(c.GetId()), c, prev.GetEtag(), c.GetEtag()).Move(k.campaignIndexes(prev), k.campaignIndexes(c)).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// GetCampaign implements marketing.CampaignStore.
func (s *Store) GetCampaign(ctx context.Context, tenant, id string) (*marketing.Campaign, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).campaign(id), &marketing.Campaign{}, marketing.ErrCampaignNotFound)
}

// GetCampaigns implements marketing.CampaignStore: one round trip.
func (s *Store) GetCampaigns(ctx context.Context, tenant string, ids []string) ([]*marketing.Campaign, error) {
	return commit.GetIDs(ctx, s.rdb, ids, s.scope(tenant).campaign, func() *marketing.Campaign { return &marketing.Campaign{} })
}

// ListCampaigns implements marketing.CampaignStore.
func (s *Store) ListCampaigns(ctx context.Context, tenant string, q marketing.CampaignQuery) (page.Page[*marketing.Campaign], error) {
	k := s.scope(tenant)
	return commit.List(ctx, s.rdb, commit.Range{Index: k.campaignIndex(q.Index), Desc: true, After: q.After, Limit: q.Limit},
		k.campaign, func() *marketing.Campaign { return &marketing.Campaign{} })
}

// CampaignCounters implements marketing.CampaignStore.
func (s *Store) CampaignCounters(ctx context.Context, tenant, id string) (marketing.CampaignCounters, error) {
	m, err := s.rdb.HGetAll(ctx, s.scope(tenant).campaignStats(id)).Result()
	if err != nil {
		return marketing.CampaignCounters{}, err
	}
	n := func(field string) int64 { v, _ := strconv.ParseInt(m[field], 10, 64); return v }
	return marketing.CampaignCounters{
		Touches: n(statTouches), Leads: n(statLeads), MarketingQualifiedLeads: n(statMQLs),
		Conversions: n(statWins), WonRevenueNanos: n(statRevenue), WonDeals: n(statWon), LostDeals: n(statLost),
		FirstTouchNanos: n(statFirst), LastTouchNanos: n(statLast), LinearNanos: n(statLinear),
	}, nil
}

// countLeadWrite adds a lead write's campaign effects: a campaign it names must exist; a capture
// counts a touch (and, for a new lead, a lead) for it; a lead that has just become
// MARKETING_QUALIFIED counts an MQL for its source campaign, and one just CONVERTED a conversion.
// All in the lead's atomic call.
func (k leadKeys) countLeadWrite(w *commit.Write, lw marketing.LeadWrite) {
	if lw.Campaign != "" {
		w.ExpectExists(k.campaign(lw.Campaign))
		if lw.Touch {
			w.HIncrBy(k.campaignStats(lw.Campaign), statTouches, 1)
			w.HIncrBy(k.leadTouches(lw.Lead.GetId()), lw.Campaign, 1)
			if lw.Prev == nil {
				w.HIncrBy(k.campaignStats(lw.Campaign), statLeads, 1)
			}
		}
	}
	mql := marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED
	if source := lw.Lead.GetCampaignId(); source != "" && lw.Lead.GetStatus() == mql && lw.Prev.GetStatus() != mql {
		w.HIncrBy(k.campaignStats(source), statMQLs, 1)
	}
	converted := marketingv1.LeadStatus_LEAD_STATUS_CONVERTED
	if source := lw.Lead.GetCampaignId(); source != "" && lw.Lead.GetStatus() == converted && lw.Prev.GetStatus() != converted {
		w.HIncrBy(k.campaignStats(source), statWins, 1)
	}
}
