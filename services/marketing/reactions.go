package marketing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Events marketing reacts to. They are the other services' contracts, repeated here because
// marketing does not import their modules.
const (
	eventLeadConverted         = "sales.lead.converted"
	eventOrderPlaced           = "sales.order.placed"
	eventOpportunityWon        = "sales.opportunity.won"
	eventOpportunityLost       = "sales.opportunity.lost"
	eventSubscriptionActivated = "product.subscription.activated"
	eventSubscriptionRenewed   = "product.subscription.renewed"
	eventSubscriptionCanceled  = "product.subscription.canceled"
	eventSubscriptionExpired   = "product.subscription.expired"
	eventAdoptionChanged       = "product.adoption.changed"
	eventNpsRecorded           = "support.nps.recorded"
	eventSlaBreached           = "support.ticket.sla_breached"
)

// EventLeadConverted is emitted when sales' conversion of a lead reaches marketing.
const EventLeadConverted = "marketing.lead.converted"

// At-risk reasons the reactions set and clear.
const (
	RiskSubscriptionCanceled = "subscription_canceled"
	RiskLowAdoption          = "low_adoption"
	RiskNpsDetractor         = "nps_detractor"
	RiskUrgentSlaBreach      = "urgent_sla_breach"
)

// ReferralBonusPoints are credited to a referrer when the customer they referred places a first
// order.
const ReferralBonusPoints = 500

// AppliedMarker names one effect of one event. A reaction commits its effect with this marker
// (commit.Once), so a redelivered event, or a retry after some effects of an event were applied,
// applies only what is missing.
func AppliedMarker(eventID, effect string) string { return eventID + "/" + effect }

// CampaignTally is what one event adds to a campaign's counters.
type CampaignTally struct {
	CampaignID string
	// RevenueNanos is revenue in nano units of Currency; Currency is empty when it is the
	// campaign's own (the counter performance shows).
	RevenueNanos        int64
	Currency            string
	WonDeals, LostDeals int64
}

// ReactionStore is what the reactions read and write beside leads, campaigns, lifecycles and loyalty.
type ReactionStore interface {
	Store
	CampaignStore
	// LeadOfCustomer returns the customer's lead; ErrLeadNotFound if none.
	LeadOfCustomer(ctx context.Context, tenant, customer string) (*Lead, error)
	// ClaimFirstOrder records order (an event id) as the customer's first order unless another
	// came first, and returns the first one's.
	ClaimFirstOrder(ctx context.Context, tenant, customer, order string) (string, error)
	// CountCampaigns adds tallies to campaign counters in one commit with the applied marker;
	// ErrAlreadyApplied if the marker exists.
	CountCampaigns(ctx context.Context, tenant, applied string, tallies []CampaignTally) error
	// MarkSubscription records a customer's subscription as active or not and returns how many
	// stay active.
	MarkSubscription(ctx context.Context, tenant, customer, subscription string, active bool) (int64, error)
	// ActiveSubscriptions counts the customer's active subscriptions.
	ActiveSubscriptions(ctx context.Context, tenant, customer string) (int64, error)
	// ScheduleChurn (re)sets when the customer churns; CancelChurn drops it.
	ScheduleChurn(ctx context.Context, tenant, customer string, due time.Time) error
	CancelChurn(ctx context.Context, tenant, customer string) error
	// DueChurns returns up to limit customers of a partition whose churn is due at now.
	DueChurns(ctx context.Context, partition int, now time.Time, limit int) ([]DueChurn, error)
}

// DueChurn is a customer whose churn window ran out.
type DueChurn struct{ Tenant, Customer string }

// ChurnWindow is how long a customer whose last subscription ended stays at risk before churning,
// unless a new order or subscription comes first.
const ChurnWindow = 90 * 24 * time.Hour

// churnBatch bounds one read of the churn schedule.
const churnBatch = 100

// Reactions are marketing's handlers of other services' events. Each effect is committed with
// its marker, so every handler is idempotent: a redelivered event changes nothing.
type Reactions struct {
	store     ReactionStore
	lifecycle *Lifecycle
	loyalty   *Loyalty
	publisher events.Publisher
	now       func() time.Time
}

// NewReactions returns the handlers over store and the lifecycle and loyalty use cases.
func NewReactions(store ReactionStore, lifecycle *Lifecycle, loyalty *Loyalty, publisher events.Publisher, now func() time.Time) *Reactions {
	return &Reactions{store: store, lifecycle: lifecycle, loyalty: loyalty, publisher: publisher, now: now}
}

// Handle is the events.Handler of marketing's subscriptions: it reacts to the events it knows and
// ignores the others.
func (r *Reactions) Handle(ctx context.Context, ev *eventv1.Event) error {
	var err error
	switch ev.GetType() {
	case eventLeadConverted:
		err = r.leadConverted(ctx, ev)
	case eventOrderPlaced:
		err = r.orderPlaced(ctx, ev)
	case eventOpportunityWon, eventOpportunityLost:
		err = r.dealClosed(ctx, ev)
	case eventSubscriptionActivated, eventSubscriptionRenewed, eventSubscriptionCanceled, eventSubscriptionExpired:
		err = r.subscriptionChanged(ctx, ev)
	case eventAdoptionChanged:
		err = r.adoptionChanged(ctx, ev)
	case eventNpsRecorded:
		err = r.npsRecorded(ctx, ev)
	case eventSlaBreached:
		err = r.slaBreached(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("marketing: reacting to %s %s: %w", ev.GetType(), ev.GetId(), err)
	}
	return nil
}

// payload decodes an event's payload into msg.
func payload[M proto.Message](ev *eventv1.Event, msg M) (M, error) {
	return msg, anypb.UnmarshalTo(ev.GetPayload(), msg, proto.UnmarshalOptions{})
}

// applied treats an effect applied before as done.
func applied(err error) error {
	if errors.Is(err, ErrAlreadyApplied) {
		return nil
	}
	return err
}

// leadConverted marks the lead CONVERTED (from NEW, ENGAGED or MARKETING_QUALIFIED) and counts a
// conversion for its source campaign, in one commit with the event's marker.
func (r *Reactions) leadConverted(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &salesv1.LeadConverted{})
	if err != nil {
		return err
	}
	tenant := ev.GetTenantId()
	for range engageAttempts {
		lead, err := r.store.GetLead(ctx, tenant, p.GetLeadId())
		if errors.Is(err, ErrLeadNotFound) {
			return nil // erased since, or converted from outside marketing
		}
		if err != nil {
			return err
		}
		from := lead.GetStatus()
		if from == marketingv1.LeadStatus_LEAD_STATUS_CONVERTED || from == marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED {
			return nil
		}
		now := r.now().UTC()
		next := proto.CloneOf(lead)
		setStatus(next, marketingv1.LeadStatus_LEAD_STATUS_CONVERTED, now)
		touch(next, lead, now)
		_, out, err := r.publisher.Envelope(ctx, EventLeadConverted, tenant, lead.GetCustomerId(), now, &marketingv1.LeadConverted{
			LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), From: from, SourceCampaignId: lead.GetCampaignId(), CauseEventId: ev.GetId(),
		})
		if err != nil {
			return err
		}
		err = r.store.UpdateLead(ctx, tenant, LeadWrite{Lead: next, Prev: lead, Events: [][]byte{out}, Applied: AppliedMarker(ev.GetId(), "lead")})
		if errors.Is(err, ErrStale) {
			continue
		}
		return applied(err)
	}
	return ErrContention
}

// orderPlaced moves the buyer's lifecycle, credits loyalty points, attributes the revenue to the
// lead's first- and last-touch campaigns and, on a referred customer's first order, rewards the
// referrer. Each effect has its own marker, so a retry after a partial failure applies only the
// missing ones.
func (r *Reactions) orderPlaced(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &salesv1.OrderPlaced{})
	if err != nil {
		return err
	}
	tenant, order := ev.GetTenantId(), p.GetOrder()
	customer := order.GetCustomerId()
	if customer == "" {
		return nil
	}
	first, err := r.store.ClaimFirstOrder(ctx, tenant, customer, ev.GetId())
	if err != nil {
		return err
	}
	isFirst := first == ev.GetId()
	if err := r.store.CancelChurn(ctx, tenant, customer); err != nil {
		return err
	}
	stage := marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
	if isFirst {
		stage = marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
	}
	pick := func(cur Stage) Stage {
		if cur == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
			return marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER // back, whatever the order count
		}
		return stage
	}
	if err := r.moveIfAllowed(ctx, tenant, customer, ev.GetType(), ev.GetId(), pick); err != nil {
		return err
	}
	if err := r.creditOrder(ctx, tenant, ev.GetId(), order); err != nil {
		return err
	}
	lead, err := r.store.LeadOfCustomer(ctx, tenant, customer)
	if errors.Is(err, ErrLeadNotFound) {
		lead, err = nil, nil
	}
	if err != nil {
		return err
	}
	if err := r.attributeRevenue(ctx, tenant, ev.GetId(), order, lead); err != nil {
		return err
	}
	if referrer := lead.GetReferrerCustomerId(); isFirst && referrer != "" && referrer != customer {
		return r.rewardReferrer(ctx, tenant, referrer, customer, ev)
	}
	return nil
}

// creditOrder credits the points the order earns under the tenant's loyalty programme, once. An
// order in a currency the programme does not earn in earns nothing.
func (r *Reactions) creditOrder(ctx context.Context, tenant, eventID string, order *salesv1.Order) error {
	points, err := r.loyalty.PointsForOrder(ctx, tenant, order.GetTotal())
	if errors.Is(err, ErrOrderCurrency) || (err == nil && points <= 0) {
		return nil
	}
	if err != nil {
		return err
	}
	_, _, err = r.loyalty.credit(ctx, tenant, order.GetCustomerId(), points, "order "+order.GetId(), AppliedMarker(eventID, "loyalty"))
	return applied(err)
}

// attributeRevenue adds the order's total to the won revenue of the campaigns that touched the
// customer's lead first and last (once each), or to the order's own campaign without a lead.
func (r *Reactions) attributeRevenue(ctx context.Context, tenant, eventID string, order *salesv1.Order, lead *Lead) error {
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
	return applied(r.store.CountCampaigns(ctx, tenant, AppliedMarker(eventID, "revenue"), tallies))
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

// rewardReferrer credits the referral bonus once and makes the referrer an ADVOCATE if they are a
// customer (the ladder only moves forward).
func (r *Reactions) rewardReferrer(ctx context.Context, tenant, referrer, referred string, ev *eventv1.Event) error {
	_, _, err := r.loyalty.credit(ctx, tenant, referrer, ReferralBonusPoints, "referral of customer "+referred, AppliedMarker(ev.GetId(), "referral-bonus"))
	if err := applied(err); err != nil {
		return err
	}
	return r.moveIfAllowed(ctx, tenant, referrer, ev.GetType(), AppliedMarker(ev.GetId(), "referrer"), toAdvocate)
}

// toAdvocate makes a customer an ADVOCATE; anyone else stays.
func toAdvocate(cur Stage) Stage {
	if isCustomerStage(cur) {
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE
	}
	return marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED
}

// moveIfAllowed moves a customer to the stage pick chooses from the current one, when the stage
// machine allows it; otherwise the lifecycle stays as it is. A customer without a lifecycle
// enters it.
func (r *Reactions) moveIfAllowed(ctx context.Context, tenant, customer, cause, eventID string, pick func(Stage) Stage) error {
	l := r.lifecycle
	_, err := l.change(ctx, tenant, customer, eventID, true, func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error) {
		to := pick(cur.GetStage())
		if !CanMoveStage(cur.GetStage(), to) {
			return nil, nil
		}
		return enterStage(ctx, l.publisher, tenant, customer, cur, LifecycleMove{Stage: to, Cause: cause, EventID: eventID}, now)
	})
	return err
}

// atRisk sets or clears a risk reason of a customer marketing knows; an unknown customer is left
// alone.
func (r *Reactions) atRisk(ctx context.Context, tenant, customer, reason, eventID string, set bool) error {
	change := r.lifecycle.ClearAtRisk
	if set {
		change = r.lifecycle.SetAtRisk
	}
	_, err := change(ctx, tenant, customer, reason, eventID)
	if errors.Is(err, ErrLifecycleNotFound) {
		return nil
	}
	return err
}

// dealClosed counts a won or lost deal for the campaign the deal is attributed to.
func (r *Reactions) dealClosed(ctx context.Context, ev *eventv1.Event) error {
	var opp *salesv1.Opportunity
	if ev.GetType() == eventOpportunityWon {
		p, err := payload(ev, &salesv1.OpportunityWon{})
		if err != nil {
			return err
		}
		opp = p.GetOpportunity()
	} else {
		p, err := payload(ev, &salesv1.OpportunityLost{})
		if err != nil {
			return err
		}
		opp = p.GetOpportunity()
	}
	won := ev.GetType() == eventOpportunityWon
	tallies, err := r.tallies(ctx, ev.GetTenantId(), []string{opp.GetCampaignId()}, func(*Campaign) CampaignTally {
		if won {
			return CampaignTally{WonDeals: 1}
		}
		return CampaignTally{LostDeals: 1}
	})
	if err != nil || len(tallies) == 0 {
		return err
	}
	return applied(r.store.CountCampaigns(ctx, ev.GetTenantId(), AppliedMarker(ev.GetId(), "deal"), tallies))
}

// subscriptionChanged makes an activated (or renewed) subscriber a CLIENT and clears the
// "subscription_canceled" risk; a cancellation or expiry that leaves nothing active flags the
// customer at risk and schedules their churn (see SweepChurn).
func (r *Reactions) subscriptionChanged(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &productv1.SubscriptionChanged{})
	if err != nil {
		return err
	}
	tenant, customer := ev.GetTenantId(), p.GetCustomerId()
	if customer == "" {
		customer = p.GetSubscription().GetCustomerId()
	}
	if customer == "" {
		return nil
	}
	active := ev.GetType() == eventSubscriptionActivated || ev.GetType() == eventSubscriptionRenewed
	left, err := r.store.MarkSubscription(ctx, tenant, customer, p.GetSubscription().GetId(), active)
	if err != nil {
		return err
	}
	if !active {
		if left > 0 {
			return nil
		}
		if err := r.store.ScheduleChurn(ctx, tenant, customer, ev.GetOccurredTime().AsTime().Add(ChurnWindow)); err != nil {
			return err
		}
		return r.atRisk(ctx, tenant, customer, RiskSubscriptionCanceled, AppliedMarker(ev.GetId(), "risk"), true)
	}
	if err := r.store.CancelChurn(ctx, tenant, customer); err != nil {
		return err
	}
	err = r.moveIfAllowed(ctx, tenant, customer, ev.GetType(), ev.GetId(), func(Stage) Stage {
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	})
	if err != nil {
		return err
	}
	return r.atRisk(ctx, tenant, customer, RiskSubscriptionCanceled, AppliedMarker(ev.GetId(), "risk"), false)
}

// adoptionChanged flags a customer whose adoption fell to AT_RISK, and clears it back at HEALTHY.
func (r *Reactions) adoptionChanged(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &productv1.AdoptionChanged{})
	if err != nil {
		return err
	}
	switch p.GetAdoption().GetBand() {
	case productv1.AdoptionBand_ADOPTION_BAND_AT_RISK:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskLowAdoption, ev.GetId(), true)
	case productv1.AdoptionBand_ADOPTION_BAND_HEALTHY:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskLowAdoption, ev.GetId(), false)
	}
	return nil
}

// npsRecorded makes a promoter (9-10) who is a customer an ADVOCATE and flags a detractor (0-6).
func (r *Reactions) npsRecorded(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &supportv1.NpsRecorded{})
	if err != nil {
		return err
	}
	switch score := p.GetScore(); {
	case score >= 9:
		return r.moveIfAllowed(ctx, ev.GetTenantId(), p.GetCustomerId(), ev.GetType(), ev.GetId(), toAdvocate)
	case score <= 6:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskNpsDetractor, ev.GetId(), true)
	}
	return nil
}

// slaBreached flags the customer of an URGENT ticket whose SLA ran out.
func (r *Reactions) slaBreached(ctx context.Context, ev *eventv1.Event) error {
	p, err := payload(ev, &supportv1.TicketSlaBreached{})
	if err != nil {
		return err
	}
	if p.GetTicket().GetPriority() != supportv1.TicketPriority_TICKET_PRIORITY_URGENT {
		return nil
	}
	return r.atRisk(ctx, ev.GetTenantId(), p.GetTicket().GetCustomerId(), RiskUrgentSlaBreach, ev.GetId(), true)
}

// SweepChurn moves the customers of a partition whose churn window ran out to CHURNED: still
// without an active subscription (a new order or subscription cancels the schedule), and from a
// customer stage. Sweeps in several processes at once are safe: the move is conditional on the
// lifecycle's version, and a churned customer is not churned again.
func (r *Reactions) SweepChurn(ctx context.Context, partition int) (int, error) {
	churned := 0
	for {
		due, err := r.store.DueChurns(ctx, partition, r.now(), churnBatch)
		if err != nil || len(due) == 0 {
			return churned, err
		}
		for _, d := range due {
			active, err := r.store.ActiveSubscriptions(ctx, d.Tenant, d.Customer)
			if err != nil {
				return churned, err
			}
			if active == 0 {
				lc, err := r.lifecycle.Get(ctx, d.Tenant, d.Customer)
				if err != nil && !errors.Is(err, ErrLifecycleNotFound) {
					return churned, err
				}
				if CanMoveStage(lc.GetStage(), marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED) {
					churn := func(Stage) Stage { return marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED }
					if err := r.moveIfAllowed(ctx, d.Tenant, d.Customer, "churn_window", "", churn); err != nil {
						return churned, err
					}
					churned++
				}
			}
			if err := r.store.CancelChurn(ctx, d.Tenant, d.Customer); err != nil {
				return churned, err
			}
		}
	}
}
