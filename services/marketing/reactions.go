package marketing

import (
	"context"
	"errors"
	"time"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Reactions are marketing's handlers of other services' events; each lives beside the use case it
// drives (lead_reactions.go, lifecycle_reactions.go, loyalty_reactions.go, campaign_reactions.go).
// Every effect is committed under the event's redelivery guard (events.Guard), so a redelivered
// event changes nothing.
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

// Routes are the events marketing reacts to, each with its handler; events.Subscribe makes them
// marketing's subscriptions to the sales, product and support streams, and to its own (a SUSPECT
// captured or engaged becomes a PROSPECT).
func (r *Reactions) Routes() []events.Route {
	return []events.Route{
		events.On(salesv1.EventLeadConverted, r.leadConverted),
		events.On(salesv1.EventOrderPlaced, r.orderPlaced),
		events.On(salesv1.EventCustomerValueChanged, r.valueChanged),
		events.On(salesv1.EventOpportunityWon, r.dealWon),
		events.On(salesv1.EventOpportunityLost, r.dealLost),
		events.On(productv1.EventSubscriptionActivated, r.subscriptionStarted),
		events.On(productv1.EventSubscriptionRenewed, r.subscriptionStarted),
		events.On(productv1.EventSubscriptionCanceled, r.subscriptionEnded),
		events.On(productv1.EventSubscriptionExpired, r.subscriptionEnded),
		events.On(productv1.EventAdoptionChanged, r.adoptionChanged),
		events.On(supportv1.EventNpsRecorded, r.npsRecorded),
		events.On(supportv1.EventTicketSlaBreached, r.slaBreached),
		events.On(marketingv1.EventLeadCaptured, r.leadCaptured),
		events.On(marketingv1.EventLeadEngaged, r.leadEngaged),
		events.On(marketingv1.EventCustomerMerged, r.customerMerged),
		events.On(marketingv1.EventLifecycleSettingsUpdated, r.lifecycleSettingsUpdated),
	}
}

// ReactionStore is what the reactions read and write beside leads, campaigns, lifecycles and loyalty.
type ReactionStore interface {
	Store
	CampaignStore
	FactStore
	CustomerStore
	MergeStore
	// LeadOfCustomer returns the customer's lead; ErrLeadNotFound if none.
	LeadOfCustomer(ctx context.Context, tenant, customer string) (*Lead, error)
	// CustomerValue returns what sales last said the customer is worth; nil when nothing yet.
	CustomerValue(ctx context.Context, tenant, customer string) (*salesv1.CustomerValue, error)
	// PutCustomerValue replaces prev (ErrStale when it is not current) with next, under the
	// redelivery guard of applied (ErrAlreadyApplied).
	PutCustomerValue(ctx context.Context, tenant string, applied events.Effect, prev, next *salesv1.CustomerValue) error
	// LeadTouches counts a lead's captures per campaign.
	LeadTouches(ctx context.Context, tenant, lead string) (map[string]int64, error)
	// ClaimFirstOrder records order (an event id) as the customer's first order unless another
	// came first, and returns the first one's.
	ClaimFirstOrder(ctx context.Context, tenant, customer, order string) (string, error)
	// CountCampaigns adds tallies to campaign counters in one commit under the redelivery guard
	// of applied; ErrAlreadyApplied if it was applied before.
	CountCampaigns(ctx context.Context, tenant string, applied events.Effect, tallies []CampaignTally) error
	// ScheduleChurn (re)sets when the customer churns: at due, a churn window counted from from,
	// the window of the lifecycle settings at settingsVersion (StoredSettingsEtag): ErrStale when
	// they changed since. CancelChurn drops it.
	ScheduleChurn(ctx context.Context, tenant, customer string, from, due time.Time, settingsVersion string) error
	CancelChurn(ctx context.Context, tenant, customer string) error
	// ScheduledChurns walks a tenant's churn schedule from cursor (0 to start), about count at a
	// time: every entry present for the whole walk is returned at least once; the next cursor is
	// 0 at the end. RetimeChurns sets the due times of churns (their Due) if the lifecycle
	// settings are still at settingsVersion, ErrStale otherwise.
	ScheduledChurns(ctx context.Context, tenant string, cursor uint64, count int) ([]ScheduledChurn, uint64, error)
	RetimeChurns(ctx context.Context, tenant string, churns []ScheduledChurn, settingsVersion string) error
	// DueChurns returns up to limit customers of a partition whose churn is due at now.
	DueChurns(ctx context.Context, partition int, now time.Time, limit int) ([]DueChurn, error)
}

// applied treats an effect applied before as done.
func applied(err error) error {
	if errors.Is(err, ErrAlreadyApplied) {
		return nil
	}
	return err
}

// orderPlaced moves the buyer's lifecycle, credits loyalty points, attributes the revenue to the
// lead's first- and last-touch campaigns and, on a referred customer's first order, rewards the
// referrer. Each effect has its own guard, so a retry after a partial failure applies only the
// missing ones.
func (r *Reactions) orderPlaced(ctx context.Context, ev *eventv1.Event, p *salesv1.OrderPlaced) error {
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
	placed := order.GetCreateTime().AsTime()
	if order.GetCreateTime() == nil {
		placed = ev.GetOccurredTime().AsTime()
	}
	if err := r.learn(ctx, tenant, customer, Fact{Order: order.GetId(), OrderTime: placed}, ev.GetType(), ev.GetId()); err != nil {
		return err
	}
	if err := r.creditOrder(ctx, tenant, ev, order); err != nil {
		return err
	}
	lead, err := r.store.LeadOfCustomer(ctx, tenant, customer)
	if errors.Is(err, ErrLeadNotFound) {
		lead, err = nil, nil
	}
	if err != nil {
		return err
	}
	if err := r.attributeRevenue(ctx, tenant, ev, order, lead); err != nil {
		return err
	}
	if referrer := lead.GetReferrerCustomerId(); isFirst && referrer != "" && referrer != customer {
		return r.rewardReferrer(ctx, tenant, referrer, customer, ev)
	}
	return nil
}
