package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

// Subscription keys: the subscription; its list indexes; the active grants of a product to a
// customer (what CheckEntitlement reads); how the customer's last grant of each product ended; the
// customer's active grant count per product (what recommendations exclude and adoption counts);
// the tenant's renewal
// schedule (scored by period end).
func (k tenantKeys) subscription(id string) string { return k.Key("subscription", id) }
func (k tenantKeys) grants(customer, productID string) string {
	return k.Key("grants", customer, productID)
}
func (k tenantKeys) grantsEnded(customer string) string { return k.Key("grants-ended", customer) }
func (k tenantKeys) owned(customer string) string       { return k.Key("owned", customer) }
func (k tenantKeys) renewals() string                   { return k.Key("renewals") }

func (k tenantKeys) subscriptionIndex(ix product.SubscriptionIndex) string {
	parts := []string{"subscriptions"}
	if ix.CustomerID != "" {
		parts = append(parts, "customer", ix.CustomerID)
	}
	if ix.Status != 0 {
		parts = append(parts, "status", ix.Status.String())
	}
	return k.Key(parts...)
}

func (k tenantKeys) subscriptionEntries(s *product.Subscription) []commit.Entry {
	c, st := s.GetCustomerId(), s.GetStatus()
	out := make([]commit.Entry, 0, 4)
	for _, ix := range []product.SubscriptionIndex{{}, {Status: st}, {CustomerID: c}, {CustomerID: c, Status: st}} {
		out = append(out, commit.Entry{Index: k.subscriptionIndex(ix), Member: s.GetId()})
	}
	return out
}

// dueMember is a tenant's subscription or customer in a partition's schedule.
func dueMember(tenant, id string) string { return tenant + "/" + id }

// schedule puts an active recurring subscription on the renewal schedules at its period end, or
// takes an ended one off.
func (k tenantKeys) schedule(w *commit.Write, tenant string, s *product.Subscription) {
	if product.IsEntitling(s) && product.Recurring(s.GetBillingPeriod()) {
		at := float64(s.GetCurrentPeriodEndTime().AsTime().Unix())
		w.ZAdd(k.renewals(), at, s.GetId()).ZAdd(k.renewalsDue, at, dueMember(tenant, s.GetId()))
		return
	}
	w.ZRem(k.renewals(), s.GetId()).ZRem(k.renewalsDue, dueMember(tenant, s.GetId()))
}

// countSeats adds (sign 1) or takes away (-1) a recurring subscription's seats from its customer's
// count; the units of a one-time entitlement are no seats.
func (k tenantKeys) countSeats(w *commit.Write, sub *product.Subscription, sign int64) {
	if product.Recurring(sub.GetBillingPeriod()) {
		w.HIncrBy(k.customerStats(sub.GetCustomerId()), statSeats, sign*sub.GetQuantity())
	}
}

// PlaceOrder implements product.SubscriptionStore.
func (s *Store) PlaceOrder(ctx context.Context, tenant string, o product.PlacedOrder) error {
	k := s.scope(tenant)
	w := events.Guard(commit.New(), k.Scope, o.Applied)
	if o.CustomerID != "" {
		w.ExpectUnset(k.mergedCustomers(), o.CustomerID)
	}
	for i, sub := range o.Subscriptions {
		w.Save(k.subscription(sub.GetId()), sub, "", sub.GetEtag()).Move(nil, k.subscriptionEntries(sub)).
			ZAdd(k.grants(sub.GetCustomerId(), sub.GetProductId()), 0, sub.GetId()).
			HIncrBy(k.owned(sub.GetCustomerId()), sub.GetProductId(), 1)
		k.countSeats(w, sub, 1)
		k.schedule(w, tenant, sub)
		w.Append(k.Stream(), o.Events[i])
	}
	k.countPurchases(w, o.Products)
	err := w.Run(ctx, s.rdb)
	if set := (*commit.FieldSetError)(nil); errors.As(err, &set) {
		return &product.MergedError{Survivor: set.Value}
	}
	return err
}

// mergedCustomers maps each merged customer of the tenant to its survivor.
func (k tenantKeys) mergedCustomers() string { return k.Key("merged-customers") }

// SurvivorOf implements product.UsageStore.
func (s *Store) SurvivorOf(ctx context.Context, tenant, customerID string) (string, error) {
	survivor, err := s.rdb.HGet(ctx, s.scope(tenant).mergedCustomers(), customerID).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return survivor, err
}

// RecordMerge implements product.MergeStore.
func (s *Store) RecordMerge(ctx context.Context, tenant, merged, survivor string) error {
	return commit.New().HSet(s.scope(tenant).mergedCustomers(), merged, survivor).Run(ctx, s.rdb)
}

// UpdateSubscription implements product.SubscriptionStore.
func (s *Store) UpdateSubscription(ctx context.Context, tenant string, sub, prev *product.Subscription, event []byte) error {
	k := s.scope(tenant)
	w := commit.New().
		Save(k.subscription(sub.GetId()), sub, prev.GetEtag(), sub.GetEtag()).
		Move(k.subscriptionEntries(prev), k.subscriptionEntries(sub))
	if product.IsEntitling(prev) && !product.IsEntitling(sub) {
		w.ZRem(k.grants(sub.GetCustomerId(), sub.GetProductId()), sub.GetId()).
			HIncrBy(k.owned(sub.GetCustomerId()), sub.GetProductId(), -1).
			HSet(k.grantsEnded(sub.GetCustomerId()), sub.GetProductId(), sub.GetStatus().String())
		k.countSeats(w, sub, -1)
	}
	k.schedule(w, tenant, sub)
	err := w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return product.ErrStale
	}
	return err
}

// GetSubscription implements product.SubscriptionStore: one round trip.
// GetSubscriptions implements product.SubscriptionStore: one round trip.
func (s *Store) GetSubscriptions(ctx context.Context, tenant string, ids []string) ([]*product.Subscription, error) {
	return commit.GetIDs(ctx, s.rdb, ids, s.scope(tenant).subscription, func() *product.Subscription { return &product.Subscription{} })
}

// GetSubscription implements product.SubscriptionStore.
func (s *Store) GetSubscription(ctx context.Context, tenant, id string) (*product.Subscription, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).subscription(id), &product.Subscription{}, product.ErrSubscriptionNotFound)
}

// ListSubscriptions implements product.SubscriptionStore: two round trips.
func (s *Store) ListSubscriptions(ctx context.Context, tenant string, q product.SubscriptionQuery) (page.Page[*product.Subscription], error) {
	k := s.scope(tenant)
	return commit.List(ctx, s.rdb, commit.Range{Index: k.subscriptionIndex(q.Index), Desc: true, After: q.After, Limit: q.Limit},
		k.subscription, func() *product.Subscription { return &product.Subscription{} })
}

// Grant implements product.SubscriptionStore: one round trip.
func (s *Store) Grant(ctx context.Context, tenant, customerID, productID string) (product.Grant, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	active := pipe.ZRange(ctx, k.grants(customerID, productID), 0, 0)
	ended := pipe.HGet(ctx, k.grantsEnded(customerID), productID)
	exists := pipe.Exists(ctx, k.product(productID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return product.Grant{}, err
	}
	g := product.Grant{ProductExists: exists.Val() == 1}
	if ids := active.Val(); len(ids) > 0 {
		g.ActiveID = ids[0]
	}
	g.LastEnded = productv1.SubscriptionStatus(productv1.SubscriptionStatus_value[ended.Val()])
	return g, nil
}

// Due implements product.SubscriptionStore.
func (s *Store) Due(ctx context.Context, tenant string, by time.Time, limit int) ([]string, error) {
	return due(ctx, s.rdb, s.scope(tenant).renewals(), by, limit)
}

// DueInPartition implements product.SubscriptionStore.
func (s *Store) DueInPartition(ctx context.Context, partition int, by time.Time, limit int) ([]product.Due, error) {
	return s.dueIn(ctx, s.renewalsDue(partition), by, limit)
}

// dueIn reads up to limit entries of a partition's schedule due by the given time.
func (s *Store) dueIn(ctx context.Context, schedule string, by time.Time, limit int) ([]product.Due, error) {
	members, err := due(ctx, s.rdb, schedule, by, limit)
	if err != nil {
		return nil, err
	}
	out := make([]product.Due, 0, len(members))
	for _, m := range members {
		i := strings.LastIndexByte(m, '/')
		out = append(out, product.Due{Tenant: m[:i], ID: m[i+1:]})
	}
	return out, nil
}

// due reads up to limit members of a schedule scored in Unix seconds, the earliest first, due by then.
func due(ctx context.Context, rdb redis.UniversalClient, schedule string, by time.Time, limit int) ([]string, error) {
	p, err := commit.Members(ctx, rdb, commit.Range{Index: schedule, ByScore: true, Max: strconv.FormatInt(by.Unix(), 10), Limit: limit})
	return p.Items, err
}

var _ product.MergeStore = (*Store)(nil)

// MoveSubscriptions implements product.MergeStore.
func (s *Store) MoveSubscriptions(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.subscriptionIndex(product.SubscriptionIndex{CustomerID: merged}), Limit: limit})
	if err != nil || len(ids.Items) == 0 {
		return 0, err
	}
	subs, err := s.GetSubscriptions(ctx, tenant, ids.Items)
	if err != nil {
		return 0, err
	}
	w := commit.New()
	for i, sub := range subs {
		if sub == nil {
			w.ZRem(k.subscriptionIndex(product.SubscriptionIndex{CustomerID: merged}), ids.Items[i])
			continue
		}
		next := proto.CloneOf(sub)
		next.CustomerId, next.Etag = survivor, etag.Next(sub.GetEtag())
		w.Save(k.subscription(sub.GetId()), next, sub.GetEtag(), next.GetEtag()).
			Move(k.subscriptionEntries(sub), k.subscriptionEntries(next))
		if product.IsEntitling(sub) {
			w.ZRem(k.grants(merged, sub.GetProductId()), sub.GetId()).
				ZAdd(k.grants(survivor, sub.GetProductId()), 0, sub.GetId()).
				HIncrBy(k.owned(merged), sub.GetProductId(), -1).
				HIncrBy(k.owned(survivor), sub.GetProductId(), 1)
			k.countSeats(w, sub, -1)
			k.countSeats(w, next, 1)
		}
	}
	err = w.Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return 0, product.ErrStale
	}
	return len(ids.Items), err
}

// MoveGrantHistory implements product.MergeStore.
func (s *Store) MoveGrantHistory(ctx context.Context, tenant, merged, survivor string) error {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	from := pipe.HGetAll(ctx, k.grantsEnded(merged))
	to := pipe.HGetAll(ctx, k.grantsEnded(survivor))
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if len(from.Val()) == 0 {
		return nil
	}
	w := commit.New()
	for productID, status := range from.Val() {
		if _, ok := to.Val()[productID]; !ok {
			w.HSet(k.grantsEnded(survivor), productID, status)
		}
	}
	return w.Delete(k.grantsEnded(merged)).Run(ctx, s.rdb)
}
