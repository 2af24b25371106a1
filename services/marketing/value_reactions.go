package marketing

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// valueChanged keeps what sales says a customer is worth, for segments on value. Each event carries
// the customer's whole facts after an order or after they became an advocate. Sales' facts only
// grow (orders add up, the advocate flag only turns on), so a later snapshot (more orders, or the
// same orders and now an advocate) replaces an earlier one and one arriving late changes nothing.
func (r *Reactions) valueChanged(ctx context.Context, ev *eventv1.Event, p *salesv1.CustomerValueChanged) error {
	next := p.GetValue()
	if next.GetCustomerId() == "" {
		return nil
	}
	for range engageAttempts {
		prev, err := r.store.CustomerValue(ctx, ev.GetTenantId(), next.GetCustomerId())
		if err != nil {
			return err
		}
		if !laterValue(prev, next) {
			return nil
		}
		err = r.store.PutCustomerValue(ctx, ev.GetTenantId(), events.EffectOf(ev, "value"), prev, next)
		if !errors.Is(err, ErrStale) {
			return applied(err)
		}
	}
	return ErrLifecycleContention
}

// laterValue says next is a later snapshot of sales' facts than prev.
func laterValue(prev, next *salesv1.CustomerValue) bool {
	if prev.GetOrderCount() != next.GetOrderCount() {
		return next.GetOrderCount() > prev.GetOrderCount()
	}
	return next.GetAdvocate() && !prev.GetAdvocate()
}
