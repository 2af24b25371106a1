package product

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// OnOrderPlaced handles "sales.order.placed": the order creates a subscription per recurring line
// and an entitlement per one-time line, and counts its co-purchases, all in one commit under the
// event's redelivery guard, so a redelivered or concurrently delivered event changes nothing the
// second time. Lines of products the catalog does not know are skipped: there is nothing to grant.
//
// An order about a customer merged meanwhile (placed just before the merge, its event handled
// after the merge moved the customer's subscriptions) is refused by the store and placed again for
// the survivor, so nothing is ever granted to a merged customer.
func (s *Subscriptions) OnOrderPlaced(ctx context.Context, ev *eventv1.Event, placed *salesv1.OrderPlaced) error {
	order := placed.GetOrder()
	for range mergeHops {
		err := s.placeOrder(ctx, ev, order)
		var merged *MergedError
		if !errors.As(err, &merged) {
			return err
		}
		order = proto.CloneOf(order)
		order.CustomerId = merged.Survivor
	}
	return fmt.Errorf("product: order %s: its customer was merged more than %d times over", order.GetId(), mergeHops)
}

// mergeHops bounds how many merges an order follows (a survivor may itself be merged later).
const mergeHops = 8

func (s *Subscriptions) placeOrder(ctx context.Context, ev *eventv1.Event, order *salesv1.Order) error {
	tenant := ev.GetTenantId()
	ids := make([]string, len(order.GetLines()))
	for i, l := range order.GetLines() {
		ids[i] = l.GetProductId()
	}
	products, err := s.catalog.GetProducts(ctx, tenant, ids)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	o := PlacedOrder{Applied: events.EffectOf(ev, "order"), CustomerID: order.GetCustomerId()}
	for i, line := range order.GetLines() {
		p := products[i]
		if p == nil {
			continue
		}
		sub := newSubscription(order, line, p, now)
		event, err := s.announce(ctx, tenant, sub)
		if err != nil {
			return err
		}
		o.Subscriptions = append(o.Subscriptions, sub)
		o.Events = append(o.Events, event)
		if !slices.Contains(o.Products, p.GetId()) {
			o.Products = append(o.Products, p.GetId())
		}
	}
	return s.store.PlaceOrder(ctx, tenant, o)
}

// announce is the event of a new grant: a subscription activated, or an entitlement granted (a
// one-time line subscribes nobody, so it is no subscription event).
func (s *Subscriptions) announce(ctx context.Context, tenant string, sub *Subscription) ([]byte, error) {
	if !IsOneTime(sub) {
		return s.event(ctx, tenant, productv1.EventSubscriptionActivated, sub)
	}
	_, data, err := s.publisher.Envelope(ctx, productv1.EventEntitlementGranted.Of(&productv1.EntitlementGranted{
		Entitlement: EntitlementOf(sub), CustomerId: sub.GetCustomerId()}), tenant, sub.GetCustomerId(), s.now())
	return data, err
}

func newSubscription(order *salesv1.Order, line *salesv1.OrderLine, p *Product, now time.Time) *Subscription {
	ts := timestamppb.New(now)
	sub := &Subscription{
		Id: uuid.Must(uuid.NewV7()).String(), CustomerId: order.GetCustomerId(), ProductId: p.GetId(),
		Sku: p.GetSku(), OrderId: order.GetId(), Quantity: line.GetQuantity(), BillingPeriod: p.GetBillingPeriod(),
		Status: productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, StartTime: ts,
		CreateTime: ts, UpdateTime: ts, Etag: etag.First,
	}
	if Recurring(p.GetBillingPeriod()) {
		end := timestamppb.New(periodEnd(now, p.GetBillingPeriod(), 1))
		sub.CurrentPeriodEndTime, sub.RenewalTime = end, end
	} else {
		sub.BillingPeriod = productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME
	}
	return sub
}
