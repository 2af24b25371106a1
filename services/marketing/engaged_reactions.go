package marketing

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// engaged records that a SUSPECT (imported, or subscribed by consent only) was captured or
// engaged as a lead, a fact like the others, so the ladder moves them to PROSPECT whatever order
// the events come in. Only a SUSPECT needs it: SUSPECT is only ever entered at registration, in
// the registering commit, so a person who is not a SUSPECT now never will be one, and reading
// the stage first spares every other capture the fact's write.
func (r *Reactions) engaged(ctx context.Context, ev *eventv1.Event, customer string) error {
	if customer == "" {
		return nil
	}
	lc, err := r.lifecycle.Get(ctx, ev.GetTenantId(), customer)
	if errors.Is(err, ErrLifecycleNotFound) {
		return nil
	}
	if err != nil || lc.GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
		return err
	}
	return r.learn(ctx, ev.GetTenantId(), customer, Fact{Engaged: true}, ev.GetType(), ev.GetId())
}

func (r *Reactions) leadCaptured(ctx context.Context, ev *eventv1.Event, p *marketingv1.LeadCaptured) error {
	if p.GetImported() {
		return nil // an import brings a record in; the person has not engaged
	}
	if p.GetRegistered() {
		return nil // a PROSPECT from the capture's own commit: no read of their stage needed
	}
	return r.engaged(ctx, ev, p.GetCustomerId())
}

func (r *Reactions) leadEngaged(ctx context.Context, ev *eventv1.Event, p *marketingv1.LeadEngaged) error {
	return r.engaged(ctx, ev, p.GetCustomerId())
}
