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

// Usage keys: totals per feature of a subscription and of a customer per month; the months a
// customer has usage in (what a merge moves); when each feature was last used by the customer
// (unix seconds); the distinct users of a customer per month; the customer's seat count; the
// adoption last announced.
func (k tenantKeys) subscriptionUsage(id, period string) string {
	return k.Key("usage", "subscription", id, period)
}
func (k tenantKeys) customerUsage(customer, period string) string {
	return k.Key("usage", "customer", customer, period)
}
func (k tenantKeys) usagePeriods(customer string) string {
	return k.Key("usage-periods", customer)
}
func (k tenantKeys) featuresLastUsed(customer string) string {
	return k.Key("features-last-used", customer)
}
func (k tenantKeys) users(customer, period string) string { return k.Key("users", customer, period) }
func (k tenantKeys) customerStats(customer string) string { return k.Key("customer-stats", customer) }
func (k tenantKeys) adoption(customer string) string      { return k.Key("adoption", customer) }

const statSeats = "seats"

// RecordUsage implements product.UsageStore. The subscription must still be as read: a merge
// moving it to another customer in between makes the write stale, so the usage never lands on the
// merged customer's counters after the merge moved them.
func (s *Store) RecordUsage(ctx context.Context, tenant string, u product.UsageWrite) error {
	k := s.scope(tenant)
	rec, customer := u.Record, u.Subscription.GetCustomerId()
	w := commit.New().
		ExpectVersion(k.subscription(u.Subscription.GetId()), u.Subscription.GetEtag()).
		HIncrBy(k.subscriptionUsage(rec.GetSubscriptionId(), u.Period), rec.GetFeature(), rec.GetQuantity()).
		HIncrBy(k.customerUsage(customer, u.Period), rec.GetFeature(), rec.GetQuantity()).
		ZAdd(k.usagePeriods(customer), 0, u.Period)
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

// moveUsage adds a merged customer's usage to the survivor's and deletes the merged customer's
// usage keys, in one script so that running it again (a redelivered merge) finds nothing left to
// add. Counters add up (per-month totals per feature, seats and owned products, which the moved
// subscriptions have already taken to zero), a feature's last use is the later of the two, the
// month's users are the union (distinct users), the months are the union. The merged customer's
// announced adoption and its rescoring go.
// KEYS: merged's months, survivor's months, then merged's and survivor's last uses, stats and
// owned, merged's adoption, the partition's rescoring schedule, then per month merged's and
// survivor's totals and merged's and survivor's users.
// ARGV: the number of months read, merged's schedule entry, the months.
// Returns 'stale' when merged's months changed since they were read.
var moveUsage = redis.NewScript(`
local months = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) ~= months then return 'stale' end
local function add(from, to)
  local h = redis.call('HGETALL', from)
  for i = 1, #h, 2 do redis.call('HINCRBY', to, h[i], h[i + 1]) end
end
for m = 0, months - 1 do
  local b = 11 + 4 * m
  add(KEYS[b], KEYS[b + 1])
  if redis.call('EXISTS', KEYS[b + 2]) == 1 then
    redis.call('ZUNIONSTORE', KEYS[b + 3], 2, KEYS[b + 3], KEYS[b + 2], 'AGGREGATE', 'MIN')
  end
  redis.call('ZADD', KEYS[2], 0, ARGV[3 + m])
  redis.call('DEL', KEYS[b], KEYS[b + 2])
end
local last = redis.call('HGETALL', KEYS[3])
for i = 1, #last, 2 do
  local cur = redis.call('HGET', KEYS[4], last[i])
  if not cur or tonumber(cur) < tonumber(last[i + 1]) then redis.call('HSET', KEYS[4], last[i], last[i + 1]) end
end
add(KEYS[5], KEYS[6])
add(KEYS[7], KEYS[8])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[5], KEYS[7], KEYS[9])
redis.call('ZREM', KEYS[10], ARGV[2])
return 'ok'`)

// MoveUsage implements product.MergeStore: two round trips (the months, then the script), all on
// the tenant's slot.
func (s *Store) MoveUsage(ctx context.Context, tenant, merged, survivor string) error {
	k := s.scope(tenant)
	for range 8 {
		months, err := s.rdb.ZRange(ctx, k.usagePeriods(merged), 0, -1).Result()
		if err != nil {
			return err
		}
		keys := []string{k.usagePeriods(merged), k.usagePeriods(survivor), k.featuresLastUsed(merged), k.featuresLastUsed(survivor),
			k.customerStats(merged), k.customerStats(survivor), k.owned(merged), k.owned(survivor), k.adoption(merged), k.rescoreDue}
		args := []any{len(months), dueMember(tenant, merged)}
		for _, m := range months {
			keys = append(keys, k.customerUsage(merged, m), k.customerUsage(survivor, m), k.users(merged, m), k.users(survivor, m))
			args = append(args, m)
		}
		res, err := moveUsage.Run(ctx, s.rdb, keys, args...).Text()
		if err != nil || res != "stale" {
			return err
		}
	}
	return product.ErrStale
}
