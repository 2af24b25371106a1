package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product"
)

var _ product.UsageStore = (*Store)(nil)

// Usage keys: totals per feature of a subscription and of a customer per month; when each feature
// was last used by the customer (unix seconds); the distinct users of a customer per month; the
// customer's seat count; the adoption last announced.
func (k tenantKeys) subscriptionUsage(id, period string) string {
	return k.Key("usage", "subscription", id, period)
}
func (k tenantKeys) customerUsage(customer, period string) string {
	return k.Key("usage", "customer", customer, period)
}
func (k tenantKeys) featuresLastUsed(customer string) string {
	return k.Key("features-last-used", customer)
}
func (k tenantKeys) users(customer, period string) string { return k.Key("users", customer, period) }
func (k tenantKeys) customerStats(customer string) string { return k.Key("customer-stats", customer) }
func (k tenantKeys) adoption(customer string) string      { return k.Key("adoption", customer) }

const statSeats = "seats"

// RecordUsage implements product.UsageStore.
func (s *Store) RecordUsage(ctx context.Context, tenant string, u product.UsageWrite) error {
	k := s.scope(tenant)
	rec, customer := u.Record, u.Subscription.GetCustomerId()
	w := commit.New().
		HIncrBy(k.subscriptionUsage(rec.GetSubscriptionId(), u.Period), rec.GetFeature(), rec.GetQuantity()).
		HIncrBy(k.customerUsage(customer, u.Period), rec.GetFeature(), rec.GetQuantity())
	if u.LastUsed {
		w.HSet(k.featuresLastUsed(customer), rec.GetFeature(), strconv.FormatInt(rec.GetTime().AsTime().Unix(), 10))
	}
	if rec.GetUserId() != "" {
		w.ZAdd(k.users(customer, u.Period), 0, rec.GetUserId())
	}
	return s.commitAdoption(ctx, w, k, tenant, customer, u.Change, u.RescoreAt)
}

// Rescore implements product.UsageStore.
func (s *Store) Rescore(ctx context.Context, tenant, customer string, change *product.AdoptionChange, next time.Time) error {
	return s.commitAdoption(ctx, commit.New(), s.scope(tenant), tenant, customer, change, next)
}

// RescoreDue implements product.UsageStore.
func (s *Store) RescoreDue(ctx context.Context, partition int, by time.Time, limit int) ([]product.Due, error) {
	return s.dueIn(ctx, s.rescoreDue(partition), by, limit)
}

// commitAdoption adds the adoption change, if any, and the customer's next rescoring to w and runs it.
func (s *Store) commitAdoption(ctx context.Context, w *commit.Write, k tenantKeys, tenant, customer string,
	change *product.AdoptionChange, next time.Time) error {
	if change != nil {
		w.Save(k.adoption(customer), change.Adoption, change.PrevVersion, change.Version).Append(k.Stream(), change.Event)
	}
	if next.IsZero() {
		w.ZRem(k.rescoreDue, dueMember(tenant, customer))
	} else {
		w.ZAdd(k.rescoreDue, float64(next.Unix()), dueMember(tenant, customer))
	}
	err := w.Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return product.ErrStale
	}
	return err
}

// AdoptionInputs implements product.UsageStore: one round trip.
func (s *Store) AdoptionInputs(ctx context.Context, tenant, customer string, at time.Time, user string) (product.AdoptionInputs, error) {
	k := s.scope(tenant)
	period := at.UTC().Format("2006-01")
	pipe := s.rdb.Pipeline()
	owned := pipe.HGetAll(ctx, k.owned(customer))
	seats := pipe.HGet(ctx, k.customerStats(customer), statSeats)
	lastUsed := pipe.HGetAll(ctx, k.featuresLastUsed(customer))
	users := pipe.ZCard(ctx, k.users(customer, period))
	stored := commit.Read(ctx, pipe, k.adoption(customer))
	var seen *redis.FloatCmd
	if user != "" {
		seen = pipe.ZScore(ctx, k.users(customer, period), user)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return product.AdoptionInputs{}, err
	}
	in := product.AdoptionInputs{
		Known: len(owned.Val()) > 0, LastUsed: map[string]time.Time{}, Users: users.Val(),
		Stored: &productv1.Adoption{}, UserSeen: seen != nil && seen.Err() == nil,
	}
	in.Seats, _ = strconv.ParseInt(seats.Val(), 10, 64)
	for p, n := range owned.Val() {
		if n != "0" {
			in.Owned = append(in.Owned, p)
		}
	}
	for f, unix := range lastUsed.Val() {
		sec, _ := strconv.ParseInt(unix, 10, 64)
		in.LastUsed[f] = time.Unix(sec, 0).UTC()
	}
	if _, err := stored.Decode(in.Stored); err != nil {
		return product.AdoptionInputs{}, err
	}
	in.StoredVersion = stored.Version()
	return in, nil
}
