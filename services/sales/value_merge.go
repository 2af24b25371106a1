package sales

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// ValueMerge is the combination of a merged customer's value into the survivor's: one commit that
// saves the combined facts, removes the merged customer's, moves both rankings and corrects the
// tenant's history, under the event's redelivery guard.
type ValueMerge struct {
	Survivor, Merged, Combined *CustomerValue
	SpanDelta, RepeatDelta     int64
	Applied                    events.Effect
	Event                      []byte
}

// ValueMergeStore commits a ValueMerge; ErrStale when either value changed since it was read,
// ErrAlreadyApplied when the event was applied before.
type ValueMergeStore interface {
	MergeValues(ctx context.Context, tenant string, m *ValueMerge) error
	// PutAdvocate saves next over prev (nil: none yet) and appends event, under applied's
	// redelivery guard; ErrStale when the value changed since prev was read. Rankings do not
	// move: the orders are the same.
	PutAdvocate(ctx context.Context, tenant string, prev, next *CustomerValue, applied events.Effect, event []byte) error
}

// ErrAlreadyApplied means a reaction's event was applied before.
var ErrAlreadyApplied = errors.New("sales: event applied before")

// Reactions are sales' handlers of other services' events.
type Reactions struct{ env Env }

// NewReactions returns the handlers.
func NewReactions(env Env) *Reactions { return &Reactions{env: env} }

// Routes are the events sales reacts to.
func (r *Reactions) Routes() []events.Route {
	return []events.Route{
		events.On(marketingv1.EventCustomerMerged, r.customerMerged),
		events.On(marketingv1.EventCustomerErased, r.customerErased),
		events.On(marketingv1.EventLifecycleStageChanged, r.stageChanged),
	}
}

// stageChanged records that marketing made a customer an ADVOCATE, which makes them LOYAL (DESIGN
// §5: "LOYAL (repeat, client or advocate)"). The flag only turns on, like recurring, so the type
// is the same whatever the order the stage and order events arrive in; it is sent on in
// sales.customer.value_changed for marketing's value segments. A merged customer's move lands on
// the survivor, whose value holds the merged customer's orders.
func (r *Reactions) stageChanged(ctx context.Context, ev *eventv1.Event, p *marketingv1.LifecycleStageChanged) error {
	tenant, customer := ev.GetTenantId(), p.GetCustomerId()
	if customer == "" || p.GetMove().GetTo() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE {
		return nil
	}
	for range writeAttempts {
		survivor, err := r.env.Store.SurvivorOf(ctx, tenant, customer)
		if err != nil {
			return err
		}
		if survivor != "" {
			customer = survivor
		}
		prev, _, err := r.env.Store.CustomerValue(ctx, tenant, customer)
		if err != nil || prev.GetAdvocate() {
			return err
		}
		// No value yet is a survivor whose merge has not combined the merged customer's orders
		// here: the flag waits for them (combineValues keeps it).
		next := &CustomerValue{CustomerId: customer, FirstSeenTime: firstSeen(customer), Etag: etag.First}
		if prev != nil {
			next = proto.CloneOf(prev)
			next.Etag = etag.Next(prev.GetEtag())
		}
		next.Advocate = true
		event, err := r.env.event(ctx, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: next}), tenant, customer)
		if err != nil {
			return err
		}
		err = r.env.Store.PutAdvocate(ctx, tenant, prev, next, events.EffectOf(ev, "advocate"), event)
		switch {
		case errors.Is(err, ErrStale):
			continue
		case errors.Is(err, ErrAlreadyApplied):
			return nil
		}
		return err
	}
	return ErrContention
}

// customerMerged combines the merged customer's value into the survivor's, so what the person is
// worth counts every order of both records. Once done the merged customer has no value left, so a
// redelivered event finds nothing to combine.
func (r *Reactions) customerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	if err := r.repoint(ctx, ev, p); err != nil {
		return err
	}
	for range writeAttempts {
		m, _, err := r.env.Store.CustomerValue(ctx, tenant, merged)
		if err != nil || m == nil {
			return err
		}
		s, _, err := r.env.Store.CustomerValue(ctx, tenant, survivor)
		if err != nil {
			return err
		}
		combined, err := combineValues(survivor, s, m)
		if err != nil {
			return err
		}
		event, err := r.env.event(ctx, salesv1.EventCustomerValueChanged.Of(&salesv1.CustomerValueChanged{Value: combined}), tenant, survivor)
		if err != nil {
			return err
		}
		repeat := func(v *CustomerValue) int64 {
			if v.GetOrderCount() >= 2 {
				return 1
			}
			return 0
		}
		err = r.env.Store.MergeValues(ctx, tenant, &ValueMerge{Survivor: s, Merged: m, Combined: combined,
			SpanDelta:   salesv1.RepeatSpan(combined) - salesv1.RepeatSpan(s) - salesv1.RepeatSpan(m),
			RepeatDelta: repeat(combined) - repeat(s) - repeat(m),
			Applied:     events.EffectOf(ev, "value-merge"), Event: event})
		switch {
		case errors.Is(err, ErrStale):
			continue
		case errors.Is(err, ErrAlreadyApplied):
			return nil
		}
		return err
	}
	return ErrContention
}

// combineValues is the survivor's facts s (nil: none yet) with the merged customer's m added.
func combineValues(survivor string, s, m *CustomerValue) (*CustomerValue, error) {
	c := &CustomerValue{CustomerId: survivor, Etag: etag.First}
	if s != nil {
		c = proto.CloneOf(s)
		c.Etag = etag.Next(s.GetEtag())
	}
	c.OrderCount += m.GetOrderCount()
	c.DiscountedOrderCount += m.GetDiscountedOrderCount()
	c.Recurring = c.GetRecurring() || m.GetRecurring()
	c.Advocate = c.GetAdvocate() || m.GetAdvocate()
	if c.FirstOrderTime == nil || m.GetFirstOrderTime().AsTime().Before(c.GetFirstOrderTime().AsTime()) {
		c.FirstOrderTime = m.GetFirstOrderTime()
	}
	if c.LastOrderTime == nil || m.GetLastOrderTime().AsTime().After(c.GetLastOrderTime().AsTime()) {
		c.LastOrderTime = m.GetLastOrderTime()
	}
	if m.FirstSeenTime != nil && (c.FirstSeenTime == nil || m.GetFirstSeenTime().AsTime().Before(c.GetFirstSeenTime().AsTime())) {
		c.FirstSeenTime = m.GetFirstSeenTime()
	}
	for _, mc := range m.GetCurrencies() {
		i := slices.IndexFunc(c.Currencies, func(x *salesv1.CurrencyValue) bool { return x.GetCurrencyCode() == mc.GetCurrencyCode() })
		if i < 0 {
			c.Currencies = append(c.Currencies, proto.CloneOf(mc))
			continue
		}
		sum, err := money.Add(c.Currencies[i].GetRevenue(), mc.GetRevenue())
		if err != nil {
			return nil, err
		}
		c.Currencies[i].Revenue, c.Currencies[i].OrderCount = sum, c.Currencies[i].GetOrderCount()+mc.GetOrderCount()
	}
	slices.SortFunc(c.Currencies, func(a, b *salesv1.CurrencyValue) int { return cmp.Compare(a.GetCurrencyCode(), b.GetCurrencyCode()) })
	c.MainCurrency = mainCurrency(c.Currencies)
	return c, nil
}
