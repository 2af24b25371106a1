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

// ChurnWindow is how long a customer whose last subscription ended stays at risk before churning,
// unless a new order or subscription comes first.
const ChurnWindow = 90 * 24 * time.Hour

// churnBatch bounds one read of the churn schedule.
const churnBatch = 100

// DueChurn is a customer whose churn window ran out.
type DueChurn struct{ Tenant, Customer string }

// causeOf is the cause id of one of several lifecycle changes an event makes to one customer (a
// move and a risk flag): each is applied and remembered on its own.
func causeOf(ev *eventv1.Event, change string) string { return ev.GetId() + "/" + change }

// orderStage picks the stage an order moves its buyer to: FIRST_TIME_CUSTOMER on the first order,
// REPEAT_CUSTOMER after, and back to REPEAT_CUSTOMER from CHURNED whatever the order count.
func orderStage(first bool) func(Stage) Stage {
	return func(cur Stage) Stage {
		if first && cur != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
			return marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
		}
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
	}
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

// subscriber is the customer a subscription event is about, or "" for none.
func subscriber(p *productv1.SubscriptionChanged) string {
	if c := p.GetCustomerId(); c != "" {
		return c
	}
	return p.GetSubscription().GetCustomerId()
}

// subscriptionStarted makes an activated (or renewed) subscriber a CLIENT, cancels a scheduled
// churn and clears the "subscription_canceled" risk.
func (r *Reactions) subscriptionStarted(ctx context.Context, ev *eventv1.Event, p *productv1.SubscriptionChanged) error {
	tenant, customer := ev.GetTenantId(), subscriber(p)
	if customer == "" {
		return nil
	}
	if _, err := r.store.MarkSubscription(ctx, tenant, customer, p.GetSubscription().GetId(), true); err != nil {
		return err
	}
	if err := r.store.CancelChurn(ctx, tenant, customer); err != nil {
		return err
	}
	err := r.moveIfAllowed(ctx, tenant, customer, ev.GetType(), ev.GetId(), func(Stage) Stage {
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	})
	if err != nil {
		return err
	}
	return r.atRisk(ctx, tenant, customer, RiskSubscriptionCanceled, causeOf(ev, "risk"), false)
}

// subscriptionEnded: a cancellation or expiry that leaves nothing active flags the customer at
// risk and schedules their churn (see SweepChurn).
func (r *Reactions) subscriptionEnded(ctx context.Context, ev *eventv1.Event, p *productv1.SubscriptionChanged) error {
	tenant, customer := ev.GetTenantId(), subscriber(p)
	if customer == "" {
		return nil
	}
	left, err := r.store.MarkSubscription(ctx, tenant, customer, p.GetSubscription().GetId(), false)
	if err != nil || left > 0 {
		return err
	}
	if err := r.store.ScheduleChurn(ctx, tenant, customer, ev.GetOccurredTime().AsTime().Add(ChurnWindow)); err != nil {
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

// npsRecorded makes a promoter (9-10) who is a customer an ADVOCATE and flags a detractor (0-6).
func (r *Reactions) npsRecorded(ctx context.Context, ev *eventv1.Event, p *supportv1.NpsRecorded) error {
	switch score := p.GetScore(); {
	case score >= 9:
		return r.moveIfAllowed(ctx, ev.GetTenantId(), p.GetCustomerId(), ev.GetType(), ev.GetId(), toAdvocate)
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
