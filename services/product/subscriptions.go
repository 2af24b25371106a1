package product

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// changeAttempts bounds optimistic retries of a subscription change racing another.
const changeAttempts = 8

// sweepBatch is how many due subscriptions the sweep reads at a time.
const sweepBatch = 100

// Subscriptions are the subscription and entitlement use cases.
type Subscriptions struct {
	store     SubscriptionStore
	catalog   CatalogStore
	publisher events.Publisher
	now       func() time.Time
}

// NewSubscriptions returns the use cases.
func NewSubscriptions(store SubscriptionStore, catalog CatalogStore, publisher events.Publisher, now func() time.Time) *Subscriptions {
	return &Subscriptions{store: store, catalog: catalog, publisher: publisher, now: now}
}

// Get returns one subscription; a one-time entitlement is none (ErrSubscriptionNotFound).
func (s *Subscriptions) Get(ctx context.Context, tenant, id string) (*Subscription, error) {
	return getSubscription(ctx, s.store, tenant, id)
}

// getSubscription reads a subscription, refusing a one-time entitlement as not one.
func getSubscription(ctx context.Context, store SubscriptionStore, tenant, id string) (*Subscription, error) {
	sub, err := store.GetSubscription(ctx, tenant, id)
	if err == nil && IsOneTime(sub) {
		return nil, ErrSubscriptionNotFound
	}
	return sub, err
}

// GetMany returns subscriptions by id, in order: all, or ErrSubscriptionNotFound naming the missing
// (one-time entitlements among them).
func (s *Subscriptions) GetMany(ctx context.Context, tenant string, ids []string) ([]*Subscription, error) {
	found, err := s.store.GetSubscriptions(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	for i, sub := range found {
		if sub != nil && IsOneTime(sub) {
			found[i] = nil
		}
	}
	return batch.All(found, ids, ErrSubscriptionNotFound)
}

// List returns a page of subscriptions, newest first, without the one-time entitlements that
// share their indexes.
func (s *Subscriptions) List(ctx context.Context, tenant string, q SubscriptionQuery) (page.Page[*Subscription], error) {
	return s.listKind(ctx, tenant, q, func(sub *Subscription) bool { return !IsOneTime(sub) })
}

// Entitlements returns a page of a customer's one-time entitlements, newest first.
func (s *Subscriptions) Entitlements(ctx context.Context, tenant, customerID string, r page.Request) (page.Page[*Entitlement], error) {
	p, err := s.listKind(ctx, tenant, SubscriptionQuery{Index: SubscriptionIndex{CustomerID: customerID}, Request: r}, IsOneTime)
	out := page.Page[*Entitlement]{Next: p.Next, Items: make([]*Entitlement, len(p.Items))}
	for i, sub := range p.Items {
		out.Items[i] = EntitlementOf(sub)
	}
	return out, err
}

// kindReads bounds the index reads of one page of one kind of grant: a page may come back short
// (with a next page) when the index holds long runs of the other kind.
const kindReads = 4

// listKind reads a page of the grants that keep selects from an index both kinds share, reading
// on until the page is full, the index ends or kindReads reads were made. The cursor is the last
// id read (the indexes are ordered by id), so a page cut short of what was read resumes after its
// last item.
func (s *Subscriptions) listKind(ctx context.Context, tenant string, q SubscriptionQuery, keep func(*Subscription) bool) (page.Page[*Subscription], error) {
	var out page.Page[*Subscription]
	limit := q.Limit
	for range kindReads {
		read, err := s.store.ListSubscriptions(ctx, tenant, q)
		if err != nil {
			return page.Page[*Subscription]{}, err
		}
		for i, sub := range read.Items {
			if !keep(sub) {
				continue
			}
			out.Items = append(out.Items, sub)
			if len(out.Items) == limit {
				out.Next = ""
				if i < len(read.Items)-1 || read.Next != "" {
					out.Next = sub.GetId()
				}
				return out, nil
			}
		}
		if out.Next = read.Next; read.Next == "" {
			return out, nil
		}
		q.Request = page.Request{After: read.Next, Limit: limit - len(out.Items)}
	}
	return out, nil
}

// CheckEntitlement answers whether a customer may use, and get support for, a product; a product
// the catalog does not have is NOT_FOUND.
func (s *Subscriptions) CheckEntitlement(ctx context.Context, tenant, customerID, productID string) (*productv1.CheckEntitlementResponse, error) {
	g, err := s.store.Grant(ctx, tenant, customerID, productID)
	if err != nil {
		return nil, err
	}
	switch {
	case !g.ProductExists:
		return nil, ErrProductNotFound
	case g.ActiveID != "":
		return &productv1.CheckEntitlementResponse{Entitled: true, GrantId: g.ActiveID}, nil
	case g.LastEnded == productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_EXPIRED:
		return &productv1.CheckEntitlementResponse{Reason: ReasonExpired}, nil
	case g.LastEnded == productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED:
		return &productv1.CheckEntitlementResponse{Reason: ReasonCanceled}, nil
	}
	return &productv1.CheckEntitlementResponse{Reason: ReasonNoSubscription}, nil
}

// Cancel ends a subscription now (CANCELED) or at the end of its period (it stays ACTIVE, the sweep
// expires it). A one-time entitlement is no subscription: ErrSubscriptionNotFound. A stale ifMatch
// is ABORTED.
func (s *Subscriptions) Cancel(ctx context.Context, tenant, id string, atPeriodEnd bool, ifMatch string) (*Subscription, error) {
	return s.change(ctx, tenant, id, ifMatch, productv1.EventSubscriptionCanceled, func(sub *Subscription, now time.Time) error {
		if !IsEntitling(sub) {
			return ErrSubscriptionEnded
		}
		if atPeriodEnd && sub.GetCancelAtPeriodEnd() {
			return errUnchanged
		}
		sub.CancelTime = timestamppb.New(now)
		if atPeriodEnd {
			sub.CancelAtPeriodEnd, sub.RenewalTime = true, nil
			return nil
		}
		end(sub, productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED, now)
		return nil
	})
}

// Renew starts the next period of an active recurring subscription now, and withdraws a
// cancellation at period end. A stale ifMatch is ABORTED.
func (s *Subscriptions) Renew(ctx context.Context, tenant, id, ifMatch string) (*Subscription, error) {
	return s.change(ctx, tenant, id, ifMatch, productv1.EventSubscriptionRenewed, func(sub *Subscription, _ time.Time) error {
		if !IsEntitling(sub) {
			return ErrSubscriptionEnded
		}
		renew(sub)
		return nil
	})
}

// Sweep renews the tenant's due subscriptions and expires those canceled at period end. Each
// change is one commit conditional on the version read, so concurrent sweeps renew a
// subscription once.
func (s *Subscriptions) Sweep(ctx context.Context, tenant string) (renewed, expired int, err error) {
	for {
		ids, err := s.store.Due(ctx, tenant, s.now(), sweepBatch)
		if err != nil || len(ids) == 0 {
			return renewed, expired, err
		}
		progress := false
		for _, id := range ids {
			r, e, err := s.sweepOne(ctx, tenant, id)
			if err != nil {
				return renewed, expired, err
			}
			renewed, expired, progress = renewed+r, expired+e, progress || r+e > 0
		}
		if !progress { // what is left was handled by a concurrent sweep meanwhile
			return renewed, expired, nil
		}
	}
}

// SweepPartition is Sweep over every tenant of one key-space partition, for the timed sweep.
func (s *Subscriptions) SweepPartition(ctx context.Context, partition int) error {
	for {
		due, err := s.store.DueInPartition(ctx, partition, s.now(), sweepBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		progress := false
		for _, d := range due {
			r, e, err := s.sweepOne(ctx, d.Tenant, d.ID)
			if err != nil {
				return err
			}
			progress = progress || r+e > 0
		}
		if !progress {
			return nil
		}
	}
}

// sweepOne renews or expires one due subscription; zero counts when another writer got there first.
func (s *Subscriptions) sweepOne(ctx context.Context, tenant, id string) (renewed, expired int, err error) {
	sub, err := s.store.GetSubscription(ctx, tenant, id)
	if err != nil {
		return 0, 0, err
	}
	now := s.now().UTC()
	if !IsEntitling(sub) || !Recurring(sub.GetBillingPeriod()) || sub.GetCurrentPeriodEndTime().AsTime().After(now) {
		return 0, 0, nil
	}
	next := proto.CloneOf(sub)
	eventType := productv1.EventSubscriptionRenewed
	if sub.GetCancelAtPeriodEnd() {
		end(next, productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_EXPIRED, sub.GetCurrentPeriodEndTime().AsTime())
		eventType, expired = productv1.EventSubscriptionExpired, 1
	} else {
		renew(next)
		renewed = 1
	}
	err = s.commit(ctx, tenant, next, sub, eventType, now)
	if errors.Is(err, ErrStale) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return renewed, expired, nil
}

// errUnchanged tells change that the subscription already is as asked: nothing to write.
var errUnchanged = errors.New("product: unchanged")

// change applies edit to the current subscription and commits it, retrying when a concurrent
// change wins the race. A set ifMatch is checked against the version the commit is conditional
// on, before edit: a change in between is found by the retry's read and answers ABORTED.
func (s *Subscriptions) change(ctx context.Context, tenant, id, ifMatch string, eventType subscriptionEvent,
	edit func(*Subscription, time.Time) error) (*Subscription, error) {
	for range changeAttempts {
		sub, err := getSubscription(ctx, s.store, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, sub.GetEtag(), ErrSubscriptionEtag); err != nil {
			return nil, err
		}
		now := s.now().UTC()
		next := proto.CloneOf(sub)
		if err := edit(next, now); errors.Is(err, errUnchanged) {
			return sub, nil
		} else if err != nil {
			return nil, err
		}
		err = s.commit(ctx, tenant, next, sub, eventType, now)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
	return nil, ErrSubscriptionContention
}

func (s *Subscriptions) commit(ctx context.Context, tenant string, next, prev *Subscription, eventType subscriptionEvent, now time.Time) error {
	next.UpdateTime = timestamppb.New(now)
	next.Etag = etag.Next(prev.GetEtag())
	event, err := s.event(ctx, tenant, eventType, next)
	if err != nil {
		return err
	}
	return s.store.UpdateSubscription(ctx, tenant, next, prev, event)
}

// subscriptionEvent is the type of the four subscription events, which share their payload.
type subscriptionEvent = eventv1.Type[*productv1.SubscriptionChanged]

func (s *Subscriptions) event(ctx context.Context, tenant string, eventType subscriptionEvent, sub *Subscription) ([]byte, error) {
	_, data, err := s.publisher.Envelope(ctx, eventType.Of(&productv1.SubscriptionChanged{Subscription: sub, CustomerId: sub.GetCustomerId()}),
		tenant, sub.GetCustomerId(), s.now())
	return data, err
}

// renew moves a subscription into its next period.
func renew(sub *Subscription) {
	sub.RenewalCount++
	end := timestamppb.New(periodEnd(sub.GetStartTime().AsTime(), sub.GetBillingPeriod(), int(sub.GetRenewalCount())+1))
	sub.CurrentPeriodEndTime, sub.RenewalTime = end, end
	sub.CancelAtPeriodEnd, sub.CancelTime = false, nil
}

// end takes a subscription out of force.
func end(sub *Subscription, status productv1.SubscriptionStatus, at time.Time) {
	sub.Status = status
	sub.EndTime = timestamppb.New(at)
	sub.RenewalTime = nil
}
