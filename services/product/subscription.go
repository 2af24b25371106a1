package product

import (
	"context"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// Subscription is the stored form of a customer's grant of a product, a recurring subscription or
// a one-time entitlement, and the served form of a subscription. A one-time entitlement (IsOneTime)
// is served as an Entitlement and is no subscription to any subscription method.
//
// Both kinds share the record, its indexes, the grants CheckEntitlement reads and the owned counts,
// so an entitlement stored when one-time lines were still served as subscriptions is told apart
// from a subscription the same way as a new one: by its billing period. Nothing needs migrating.
type Subscription = productv1.Subscription

// Entitlement is the served form of a one-time entitlement.
type Entitlement = productv1.Entitlement

// Errors of subscriptions.
var (
	ErrSubscriptionNotFound = apierr.New(apierr.NotFound, "SUBSCRIPTION_NOT_FOUND", "subscription not found")
	ErrSubscriptionEnded    = apierr.New(apierr.FailedPrecondition, "SUBSCRIPTION_NOT_ACTIVE",
		"the subscription is no longer active")
	ErrSubscriptionContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the subscription kept changing concurrently; retry")
	ErrSubscriptionEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the subscription changed since it was read; read it again and retry")
)

// Reasons CheckEntitlement gives when the customer is not entitled.
const (
	ReasonNoSubscription = "NO_SUBSCRIPTION"
	ReasonExpired        = "SUBSCRIPTION_EXPIRED"
	ReasonCanceled       = "SUBSCRIPTION_CANCELED"
)

// SubscriptionIndex names a list index: all subscriptions, or those of a customer, a status, or both.
type SubscriptionIndex struct {
	CustomerID string
	Status     productv1.SubscriptionStatus
}

// SubscriptionQuery is one page of a subscription list.
type SubscriptionQuery struct {
	Index SubscriptionIndex
	page.Request
}

// Grant is what CheckEntitlement reads: whether the product is in the catalog, an active grant of it
// to a customer, if any, and how the last one ended.
type Grant struct {
	ProductExists bool
	ActiveID      string
	LastEnded     productv1.SubscriptionStatus
}

// PlacedOrder is what a placed order changes: the subscriptions its lines create and the purchase
// counters recommendations read, committed once under the event's redelivery guard.
type PlacedOrder struct {
	Applied       events.Effect
	CustomerID    string
	Subscriptions []*Subscription
	Events        [][]byte
	// Products are the order's distinct products, for the co-purchase counters.
	Products []string
}

// Due is an entry of a partition's schedule, found by the timed sweep: a tenant's subscription
// whose period ended, or customer whose adoption is to be scored again.
type Due struct {
	Tenant, ID string
}

// SubscriptionStore persists subscriptions with their indexes, entitlement grants, renewal
// schedule and outbox events.
type SubscriptionStore interface {
	// PlaceOrder commits an order's effects once: commit.ErrAlreadyApplied when its marker is set;
	// a *MergedError, writing nothing, when the order's customer was merged.
	PlaceOrder(ctx context.Context, tenant string, o PlacedOrder) error
	// UpdateSubscription replaces prev with s and moves its indexes, grant and schedule; ErrStale
	// when prev is not current.
	UpdateSubscription(ctx context.Context, tenant string, s, prev *Subscription, event []byte) error
	GetSubscription(ctx context.Context, tenant, id string) (*Subscription, error)
	// GetSubscriptions reads subscriptions by id in one round trip; nil where there is none.
	GetSubscriptions(ctx context.Context, tenant string, ids []string) ([]*Subscription, error)
	ListSubscriptions(ctx context.Context, tenant string, q SubscriptionQuery) (page.Page[*Subscription], error)
	Grant(ctx context.Context, tenant, customerID, productID string) (Grant, error)
	// Due returns up to limit subscriptions of a tenant whose period ended by the given time.
	Due(ctx context.Context, tenant string, by time.Time, limit int) ([]string, error)
	// DueInPartition is Due across the tenants of one key-space partition, for the timed sweep.
	DueInPartition(ctx context.Context, partition int, by time.Time, limit int) ([]Due, error)
	Partitions() int
}

// IsOneTime reports whether a stored grant is a one-time entitlement, not a subscription: every
// grant of a one-time line was stored with the ONE_TIME billing period.
func IsOneTime(s *Subscription) bool { return !Recurring(s.GetBillingPeriod()) }

// EntitlementOf is the served form of a stored one-time grant. One canceled as a subscription
// (possible before one-time grants stopped being subscriptions) reads as revoked.
func EntitlementOf(s *Subscription) *Entitlement {
	e := &Entitlement{Id: s.GetId(), CustomerId: s.GetCustomerId(), ProductId: s.GetProductId(), Sku: s.GetSku(),
		OrderId: s.GetOrderId(), Quantity: s.GetQuantity(), GrantTime: s.GetStartTime()}
	if !IsEntitling(s) {
		e.RevokeTime = s.GetEndTime()
	}
	return e
}

// IsEntitling reports whether a subscription grants its product now.
func IsEntitling(s *Subscription) bool {
	return s.GetStatus() == productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE
}

// periodEnd is the end of a subscription's n-th period (n from 1) from its start: whole months,
// clamped to the month's last day, so a subscription started on 31 January renews on 28 or 29
// February and then on 31 March, never drifting.
func periodEnd(start time.Time, bp productv1.BillingPeriod, n int) time.Time {
	months := n
	if bp == productv1.BillingPeriod_BILLING_PERIOD_YEARLY {
		months = 12 * n
	}
	y, m, d := start.Date()
	first := time.Date(y, m+time.Month(months), 1, start.Hour(), start.Minute(), start.Second(), start.Nanosecond(), start.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}
