package marketing

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// ReferralBonusPoints are credited to a referrer when the customer they referred places a first
// order.
const ReferralBonusPoints = 500

// creditOrder credits the points the order earns under the tenant's loyalty programme, once. An
// order in a currency the programme does not earn in earns nothing.
func (r *Reactions) creditOrder(ctx context.Context, tenant string, ev *eventv1.Event, order *salesv1.Order) error {
	points, err := r.loyalty.PointsForOrder(ctx, tenant, order.GetTotal())
	if errors.Is(err, ErrOrderCurrency) || (err == nil && points <= 0) {
		return nil
	}
	if err != nil {
		return err
	}
	customer, err := r.survivorOf(ctx, tenant, order.GetCustomerId())
	if err != nil {
		return err
	}
	_, _, err = r.loyalty.credit(ctx, tenant, customer, points, "order "+order.GetId(), events.EffectOf(ev, "loyalty"))
	return applied(err)
}

// rewardReferrer credits the referral bonus once and records the referral, which makes the
// referrer an ADVOCATE once a customer.
func (r *Reactions) rewardReferrer(ctx context.Context, tenant, referrer, referred string, ev *eventv1.Event) error {
	referrer, err := r.survivorOf(ctx, tenant, referrer)
	if err != nil {
		return err
	}
	_, _, err = r.loyalty.credit(ctx, tenant, referrer, ReferralBonusPoints, "referral of customer "+referred, events.EffectOf(ev, "referral-bonus"))
	if err := applied(err); err != nil {
		return err
	}
	return r.learn(ctx, tenant, referrer, Fact{Referrer: true}, ev.GetType(), causeOf(ev, "referrer"))
}
