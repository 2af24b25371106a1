package marketing

import (
	"context"
	"errors"
	"time"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// At-risk reasons the reactions set and clear.
const (
	RiskSubscriptionCanceled = "subscription_canceled"
	RiskLowAdoption          = "low_adoption"
	RiskNpsDetractor         = "nps_detractor"
	RiskUrgentSlaBreach      = "urgent_sla_breach"
)

// churnBatch bounds one read of the churn schedule.
const churnBatch = 100

// DueChurn is a customer whose churn window ran out.
type DueChurn struct{ Tenant, Customer string }

// ScheduledChurn is a customer on a tenant's churn schedule: their churn window started at From
// and runs out at Due.
type ScheduledChurn struct {
	Customer  string
	From, Due time.Time
}

// retimeBatch is about how many schedule entries one write of a re-timing moves.
const retimeBatch = 500

// causeOf is the cause id of one of several lifecycle changes an event makes to one customer (a
// move and a risk flag): each is applied and remembered on its own.
func causeOf(ev *eventv1.Event, change string) string { return ev.GetId() + "/" + change }

// atRisk sets or clears a risk reason of a customer marketing knows; an unknown customer is left
// alone.
func (r *Reactions) atRisk(ctx context.Context, tenant, customer, reason, eventID string, set bool) error {
	change := r.lifecycle.ClearAtRisk
	if set {
		change = r.lifecycle.SetAtRisk
	}
	_, err := change(ctx, tenant, customer, reason, eventID, "")
	if errors.Is(err, ErrLifecycleNotFound) {
		return nil
	}
	return err
}

// subscriber is the customer a subscription event is about, or "" for none.
func subscriber(p *productv1.SubscriptionChanged) string {
	if c := p.GetCustomerId(); c != "" {
		return c
	}
	return p.GetSubscription().GetCustomerId()
}

// recurring says a subscription event is about a recurring subscription: a one-time line gives an
// entitlement, which makes nobody a CLIENT.
func recurring(p *productv1.SubscriptionChanged) bool {
	return p.GetSubscription().GetBillingPeriod() != productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME
}

// subscriptionStarted records an activated (or renewed) recurring subscription, which makes a
// CLIENT, and clears the "subscription_canceled" risk.
func (r *Reactions) subscriptionStarted(ctx context.Context, ev *eventv1.Event, p *productv1.SubscriptionChanged) error {
	tenant, customer := ev.GetTenantId(), subscriber(p)
	if customer == "" || !recurring(p) {
		return nil
	}
	// The subscription's order is an order of the customer whichever event arrives first.
	at := ev.GetOccurredTime().AsTime()
	fact := Fact{Subscription: p.GetSubscription().GetId(), Active: true, At: at, Order: p.GetSubscription().GetOrderId(), OrderTime: at}
	if err := r.learn(ctx, tenant, customer, fact, ev.GetType(), ev.GetId()); err != nil {
		return err
	}
	facts, err := r.store.CustomerFacts(ctx, tenant, customer)
	if err != nil || facts.ActiveRecurring == 0 { // a late start of an ended subscription
		return err
	}
	return r.atRisk(ctx, tenant, customer, RiskSubscriptionCanceled, causeOf(ev, "risk"), false)
}

// subscriptionEnded records a cancellation or expiry (final: a late activation of the same
// subscription does not revive it); the last one to end flags the customer at risk, and the churn
// window counts from it.
func (r *Reactions) subscriptionEnded(ctx context.Context, ev *eventv1.Event, p *productv1.SubscriptionChanged) error {
	tenant, customer := ev.GetTenantId(), subscriber(p)
	if customer == "" || !recurring(p) {
		return nil
	}
	// Canceled at period end, it stays active until the sweep expires it: only a risk now.
	stillActive := p.GetSubscription().GetStatus() == productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE
	fact := Fact{Subscription: p.GetSubscription().GetId(), Active: stillActive, At: ev.GetOccurredTime().AsTime()}
	if err := r.learn(ctx, tenant, customer, fact, ev.GetType(), ev.GetId()); err != nil {
		return err
	}
	facts, err := r.store.CustomerFacts(ctx, tenant, customer)
	if err != nil || (facts.ActiveRecurring > 0 && !stillActive) {
		return err
	}
	return r.atRisk(ctx, tenant, customer, RiskSubscriptionCanceled, causeOf(ev, "risk"), true)
}

// adoptionChanged flags a customer whose adoption fell to AT_RISK, and clears it back at HEALTHY.
func (r *Reactions) adoptionChanged(ctx context.Context, ev *eventv1.Event, p *productv1.AdoptionChanged) error {
	switch p.GetAdoption().GetBand() {
	case productv1.AdoptionBand_ADOPTION_BAND_AT_RISK:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskLowAdoption, ev.GetId(), true)
	case productv1.AdoptionBand_ADOPTION_BAND_HEALTHY:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskLowAdoption, ev.GetId(), false)
	}
	return nil
}

// npsRecorded records a promoter (9-10), an ADVOCATE once a customer, and flags a detractor (0-6).
func (r *Reactions) npsRecorded(ctx context.Context, ev *eventv1.Event, p *supportv1.NpsRecorded) error {
	switch score := p.GetScore(); {
	case score >= 9:
		return r.learn(ctx, ev.GetTenantId(), p.GetCustomerId(), Fact{Promoter: true}, ev.GetType(), ev.GetId())
	case score <= 6:
		return r.atRisk(ctx, ev.GetTenantId(), p.GetCustomerId(), RiskNpsDetractor, ev.GetId(), true)
	}
	return nil
}

// slaBreached flags the customer of an URGENT ticket whose SLA ran out.
func (r *Reactions) slaBreached(ctx context.Context, ev *eventv1.Event, p *supportv1.TicketSlaBreached) error {
	if p.GetTicket().GetPriority() != supportv1.TicketPriority_TICKET_PRIORITY_URGENT {
		return nil
	}
	return r.atRisk(ctx, ev.GetTenantId(), p.GetTicket().GetCustomerId(), RiskUrgentSlaBreach, ev.GetId(), true)
}

// SweepChurn restages the customers of a partition whose churn window ran out: with no order and
// no active recurring subscription since, their facts now give CHURNED (a new order or
// subscription moved the schedule or dropped it). Sweeps in several processes at once are safe:
// restaging is idempotent and its move is conditional on the lifecycle's version.
func (r *Reactions) SweepChurn(ctx context.Context, partition int) (int, error) {
	churned := 0
	for {
		due, err := r.store.DueChurns(ctx, partition, r.now(), churnBatch)
		if err != nil || len(due) == 0 {
			return churned, err
		}
		for _, d := range due {
			if err := r.restage(ctx, d.Tenant, d.Customer, "churn_window", ""); err != nil {
				return churned, err
			}
			churned++
		}
	}
}

// lifecycleSettingsUpdated re-times the tenant's churn schedule to the current churn window: each
// scheduled customer is due when the window, counted from the start recorded with the entry, runs
// out, so a shrunk window churns them at the new time (the sweep finds them due). A grown window
// needs the same re-timing only to spare the sweep work: the sweep restages with the current window,
// which never churns early and schedules again. The settings are read anew rather than taken from
// the event, so a redelivered or late event re-times to what is current; each batch is conditional
// on those settings, and when they changed again the newer change's event re-times instead.
// Entries added meanwhile were scheduled with the current window already (ScheduleChurn checks it).
func (r *Reactions) lifecycleSettingsUpdated(ctx context.Context, ev *eventv1.Event, _ *marketingv1.LifecycleSettings) error {
	tenant := ev.GetTenantId()
	settings, err := r.lifecycle.Settings(ctx, tenant)
	if err != nil {
		return err
	}
	window, version := ChurnWindow(settings), StoredSettingsEtag(settings)
	var cursor uint64
	for {
		churns, next, err := r.store.ScheduledChurns(ctx, tenant, cursor, retimeBatch)
		if err != nil {
			return err
		}
		for i := range churns {
			churns[i].Due = churns[i].From.Add(window)
		}
		// An entry dropped since it was read comes back here as an early one; the sweep restages it
		// from the facts, which drops it again.
		if len(churns) > 0 {
			err := r.store.RetimeChurns(ctx, tenant, churns, version)
			if errors.Is(err, ErrStale) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
