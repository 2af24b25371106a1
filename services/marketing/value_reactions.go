package marketing

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// valueChanged keeps what sales says a customer is worth, for segments on value. Each event carries
// the customer's whole facts after an order, so a later snapshot (more orders) replaces an
// earlier one and one arriving late changes nothing.
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
		if prev.GetOrderCount() >= next.GetOrderCount() {
			return nil
		}
		err = r.store.PutCustomerValue(ctx, ev.GetTenantId(), events.EffectOf(ev, "value"), prev, next)
		if !errors.Is(err, ErrStale) {
			return applied(err)
		}
	}
	return ErrLifecycleContention
}
