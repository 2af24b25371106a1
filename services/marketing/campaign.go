package marketing

import (
	"context"
	"fmt"
	"math/big"
	"slices"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Campaign is the stored and served form of a campaign.
type Campaign = marketingv1.Campaign

// Errors of the campaign use cases.
var (
	ErrCampaignNotFound = apierr.New(apierr.NotFound, "CAMPAIGN_NOT_FOUND", "campaign not found")
	ErrCampaignStatus   = apierr.New(apierr.FailedPrecondition, "CAMPAIGN_STATUS",
		"the campaign's status does not allow this move")
	ErrCampaignEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the campaign changed since it was read; read it again and retry")
	ErrCampaignContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the campaign kept changing concurrently; retry")
	ErrUnknownCampaign    = apierr.Invalid("lead.campaign_id", "no campaign with this id")
	ErrCampaignCurrency   = apierr.Invalid("campaign.actual_cost", "must be in the budget's currency")
)

// updatableCampaignFields are the fields UpdateCampaign may change (its update_mask paths).
var updatableCampaignFields = []string{"display_name", "channel", "budget", "actual_cost", "start_time", "end_time", "target_segment_id"}

// campaignMoves is the status machine: DRAFT -> ACTIVE <-> PAUSED -> COMPLETED, ACTIVE -> COMPLETED.
var campaignMoves = map[marketingv1.CampaignStatus][]marketingv1.CampaignStatus{
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_DRAFT:  {marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE},
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE: {marketingv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED, marketingv1.CampaignStatus_CAMPAIGN_STATUS_COMPLETED},
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED: {marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE, marketingv1.CampaignStatus_CAMPAIGN_STATUS_COMPLETED},
}

// canMove reports whether a campaign may go from one status to another.
func canMove(from, to marketingv1.CampaignStatus) bool {
	return slices.Contains(campaignMoves[from], to)
}

// CampaignIndex names a secondary index: all campaigns (zero value), or those with one status or channel.
type CampaignIndex struct {
	Status  marketingv1.CampaignStatus
	Channel typev1.Channel
}

// CampaignQuery is one page of a campaign list.
type CampaignQuery struct {
	Index CampaignIndex
	page.Request
}

// CampaignCounters are a campaign's results as counted at write time.
type CampaignCounters struct {
	Touches, Leads, MarketingQualifiedLeads, Conversions int64
	// WonRevenueNanos is won revenue in nano units of the budget's currency.
	WonRevenueNanos int64
	// WonDeals and LostDeals count the deals attributed to the campaign that sales closed.
	WonDeals, LostDeals int64
	// Revenue by attribution model, in nano units of the budget's currency.
	FirstTouchNanos, LastTouchNanos, LinearNanos int64
}

// CampaignStore persists campaigns with their indexes, counters and outbox events.
type CampaignStore interface {
	CreateCampaign(ctx context.Context, tenant string, c *Campaign, event []byte) error
	// UpdateCampaign replaces prev with c; ErrStale when prev is not current.
	UpdateCampaign(ctx context.Context, tenant string, c, prev *Campaign, event []byte) error
	GetCampaign(ctx context.Context, tenant, id string) (*Campaign, error)
	// GetCampaigns reads campaigns by id in one round trip; nil where there is none.
	GetCampaigns(ctx context.Context, tenant string, ids []string) ([]*Campaign, error)
	ListCampaigns(ctx context.Context, tenant string, q CampaignQuery) (page.Page[*Campaign], error)
	CampaignCounters(ctx context.Context, tenant, id string) (CampaignCounters, error)
}

// ParseCampaignFilter parses the AIP-160 filters the campaign indexes support.
func ParseCampaignFilter(filter string) (CampaignIndex, error) {
	terms, err := campaignList.Parse(filter)
	if err != nil || len(terms) == 0 {
		return CampaignIndex{}, err
	}
	var ix CampaignIndex
	var v int32
	switch t := terms[0]; t.Field {
	case "status":
		v, err = t.Enum(marketingv1.CampaignStatus_value)
		ix.Status = marketingv1.CampaignStatus(v)
	case "channel":
		v, err = t.Enum(typev1.Channel_value)
		ix.Channel = typev1.Channel(v)
	}
	if err != nil {
		return CampaignIndex{}, err
	}
	return ix, nil
}

// performance computes a campaign's results from its counters, exactly (no floats for money).
func performance(c *Campaign, n CampaignCounters) (*marketingv1.CampaignPerformance, error) {
	currency := c.GetBudget().GetCurrencyCode()
	if currency == "" {
		currency = c.GetActualCost().GetCurrencyCode()
	}
	p := &marketingv1.CampaignPerformance{
		CampaignId: c.GetId(), Touches: n.Touches, Leads: n.Leads,
		MarketingQualifiedLeads: n.MarketingQualifiedLeads, Conversions: n.Conversions,
		WonRevenue: money.FromInt64Nanos(currency, n.WonRevenueNanos),
		WonDeals:   n.WonDeals, LostDeals: n.LostDeals,
		FirstTouchRevenue: money.FromInt64Nanos(currency, n.FirstTouchNanos),
		LastTouchRevenue:  money.FromInt64Nanos(currency, n.LastTouchNanos),
		LinearRevenue:     money.FromInt64Nanos(currency, n.LinearNanos),
	}
	cost := money.Nanos(c.GetActualCost())
	if cost.Sign() > 0 && n.Leads > 0 {
		per, err := money.Per(c.GetActualCost(), n.Leads)
		if err != nil {
			return nil, err
		}
		per.CurrencyCode = currency
		p.CostPerLead = per
	}
	if cost.Sign() > 0 {
		// ROI is a ratio, not money: a float is its type in the contract.
		gain := new(big.Int).Sub(big.NewInt(n.WonRevenueNanos), cost)
		p.Roi, _ = new(big.Rat).SetFrac(gain, cost).Float64()
	}
	return p, nil
}

func describeMove(from, to marketingv1.CampaignStatus) string {
	return fmt.Sprintf("%s -> %s", from, to)
}
