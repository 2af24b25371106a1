package redisstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.FactStore = (*Store)(nil)

// The ladder's facts of a customer: a hash of flags and the version ("v", counted up by every fact,
// which a stage move checks), the orders (a sorted set of order ids scored by their time), and
// the recurring subscriptions (a hash of id to "active" or "ended:<unix ms>"; an end is final).
func (k leadKeys) facts(customer string) string         { return k.Key("customer-facts", customer) }
func (k leadKeys) factOrders(customer string) string    { return k.Key("customer-orders", customer) }
func (k leadKeys) factRecurring(customer string) string { return k.Key("customer-recurring", customer) }

const (
	subscriptionActive = "active"
	subscriptionEnded  = "ended:"
)

// recordFact adds a fact and counts the version up only when it changed something, so recording
// a fact again (a redelivered event) writes nothing. KEYS: facts, orders, recurring. ARGV: order
// id, order time, subscription id, its state ("active" or "ended:<ms>"; an end is final, and a
// start after it changes nothing), then the flags to turn on.
var recordFact = redis.NewScript(`
local changed = 0
if ARGV[1] ~= '' then changed = changed + redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1]) end
if ARGV[3] ~= '' then
  if ARGV[4] == 'active' then
    changed = changed + redis.call('HSETNX', KEYS[3], ARGV[3], 'active')
  else
    local cur = redis.call('HGET', KEYS[3], ARGV[3])
    if not cur or cur == 'active' then
      redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
      changed = changed + 1
    end
  end
end
for i = 5, #ARGV do changed = changed + redis.call('HSETNX', KEYS[1], ARGV[i], '1') end
if changed > 0 then redis.call('HINCRBY', KEYS[1], 'v', 1) end
return changed
`)

// RecordFact implements marketing.FactStore: one script on the customer's keys (one slot).
func (s *Store) RecordFact(ctx context.Context, tenant, customer string, f marketing.Fact) error {
	k := s.scope(tenant)
	state := subscriptionActive
	if !f.Active {
		state = subscriptionEnded + strconv.FormatInt(f.At.UnixMilli(), 10)
	}
	args := []any{f.Order, f.OrderTime.UnixMilli(), f.Subscription, state}
	for flag, on := range map[string]bool{"promoter": f.Promoter, "referrer": f.Referrer, "engaged": f.Engaged} {
		if on {
			args = append(args, flag)
		}
	}
	keys := []string{k.facts(customer), k.factOrders(customer), k.factRecurring(customer)}
	return recordFact.Run(ctx, s.rdb, keys, args...).Err()
}

// CustomerFacts implements marketing.FactStore: one pipelined round trip.
func (s *Store) CustomerFacts(ctx context.Context, tenant, customer string) (marketing.Facts, error) {
	k := s.scope(tenant)
	var (
		orders    *redis.IntCmd
		last      *redis.ZSliceCmd
		recurring *redis.MapStringStringCmd
		flags     *redis.MapStringStringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		orders = p.ZCard(ctx, k.factOrders(customer))
		last = p.ZRangeWithScores(ctx, k.factOrders(customer), -1, -1)
		recurring = p.HGetAll(ctx, k.factRecurring(customer))
		flags = p.HGetAll(ctx, k.facts(customer))
		return nil
	})
	if err != nil {
		return marketing.Facts{}, err
	}
	f := factsOf(last.Val(), recurring.Val(), flags.Val())
	f.Orders = int(orders.Val())
	f.Version = flags.Val()["v"]
	return f, nil
}

// factsOf are the facts of orders (or the latest of them), recurring subscriptions and flags.
func factsOf(orders []redis.Z, recurring, flags map[string]string) marketing.Facts {
	f := marketing.Facts{Orders: len(orders)}
	for _, z := range orders {
		if at := time.UnixMilli(int64(z.Score)).UTC(); at.After(f.LastOrder) {
			f.LastOrder = at
		}
	}
	for _, state := range recurring {
		f.Subscribed = true
		if state == subscriptionActive {
			f.ActiveRecurring++
			continue
		}
		ms, _ := strconv.ParseInt(strings.TrimPrefix(state, subscriptionEnded), 10, 64)
		if ended := time.UnixMilli(ms).UTC(); ended.After(f.LastEnded) {
			f.LastEnded = ended
		}
	}
	f.Promoter, f.Referrer, f.Engaged = flags["promoter"] == "1", flags["referrer"] == "1", flags["engaged"] == "1"
	return f
}
