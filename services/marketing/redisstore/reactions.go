package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.ReactionStore = (*Store)(nil)

// firstOrders is the hash of each customer's first order (the event that claimed it).
func (k leadKeys) firstOrders() string { return k.Key("customer-first-order") }

// LeadOfCustomer implements marketing.ReactionStore: two reads (the map, then the lead).
func (s *Store) LeadOfCustomer(ctx context.Context, tenant, customer string) (*marketing.Lead, error) {
	id, err := s.rdb.HGet(ctx, s.scope(tenant).customerLeads(), customer).Result()
	if errors.Is(err, redis.Nil) {
		return nil, marketing.ErrLeadNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.GetLead(ctx, tenant, id)
}

// ClaimFirstOrder implements marketing.ReactionStore: a unique hash entry, so of two orders handled
// at once exactly one is the first, and claiming again with the same order is a no-op.
func (s *Store) ClaimFirstOrder(ctx context.Context, tenant, customer, order string) (string, error) {
	err := commit.New().Unique(s.scope(tenant).firstOrders(), customer, order).Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return conflict.Owner, nil
	}
	if err != nil {
		return "", err
	}
	return order, nil
}

// CountCampaigns implements marketing.ReactionStore. Revenue in a currency other than the
// campaign's is kept in a counter of its own ("won_revenue_nanos:<currency>").
func (s *Store) CountCampaigns(ctx context.Context, tenant string, applied events.Effect, tallies []marketing.CampaignTally) error {
	k := s.scope(tenant)
	w := events.Guard(commit.New(), k.Scope, applied)
	for _, t := range tallies {
		stats := k.campaignStats(t.CampaignID)
		suffix := ""
		if t.Currency != "" {
			suffix = ":" + t.Currency
		}
		for field, n := range map[string]int64{statRevenue + suffix: t.RevenueNanos, statFirst + suffix: t.FirstTouchNanos,
			statLast + suffix: t.LastTouchNanos, statLinear + suffix: t.LinearNanos, statWon: t.WonDeals, statLost: t.LostDeals} {
			if n != 0 {
				w.HIncrBy(stats, field, n)
			}
		}
	}
	err := w.Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrAlreadyApplied) {
		return marketing.ErrAlreadyApplied
	}
	return err
}

// churnDue is the partition's schedule of customers to churn: members "<tenant> <customer>" scored
// by the due time in Unix milliseconds, read by the background sweep across tenants.
func (s *Store) churnDue(tenant string) string {
	return s.keys.Partitioned(service, s.keys.Partition(tenant), "churn-due")
}

// churnFrom is the tenant's hash of scheduled customers -> when their churn window started (Unix
// milliseconds): what a new window re-times the schedule from.
func (k leadKeys) churnFrom() string { return k.Key("churn-from") }

func churnMember(tenant, customer string) string { return tenant + " " + customer }

// ScheduleChurn implements marketing.ReactionStore: the schedule entry, where it counts from, and
// the settings' version check in one commit.
func (s *Store) ScheduleChurn(ctx context.Context, tenant, customer string, from, due time.Time, settingsVersion string) error {
	k := s.scope(tenant)
	err := commit.New().ExpectVersion(k.lifecycleSettings(), settingsVersion).
		HSet(k.churnFrom(), customer, strconv.FormatInt(from.UnixMilli(), 10)).
		ZAdd(s.churnDue(tenant), float64(due.UnixMilli()), churnMember(tenant, customer)).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// CancelChurn implements marketing.ReactionStore.
func (s *Store) CancelChurn(ctx context.Context, tenant, customer string) error {
	return commit.New().HDel(s.scope(tenant).churnFrom(), customer).
		ZRem(s.churnDue(tenant), churnMember(tenant, customer)).Run(ctx, s.rdb)
}

// ScheduledChurns implements marketing.ReactionStore: one HSCAN step, which returns every entry
// present for the whole walk at least once.
func (s *Store) ScheduledChurns(ctx context.Context, tenant string, cursor uint64, count int) ([]marketing.ScheduledChurn, uint64, error) {
	kv, next, err := s.rdb.HScan(ctx, s.scope(tenant).churnFrom(), cursor, "", int64(count)).Result()
	if err != nil {
		return nil, 0, err
	}
	out := make([]marketing.ScheduledChurn, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ms, err := strconv.ParseInt(kv[i+1], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("redisstore: churn start of %s: %w", kv[i], err)
		}
		out = append(out, marketing.ScheduledChurn{Customer: kv[i], From: time.UnixMilli(ms)})
	}
	return out, next, nil
}

// RetimeChurns implements marketing.ReactionStore: one commit for the batch.
func (s *Store) RetimeChurns(ctx context.Context, tenant string, churns []marketing.ScheduledChurn, settingsVersion string) error {
	w := commit.New().ExpectVersion(s.scope(tenant).lifecycleSettings(), settingsVersion)
	for _, c := range churns {
		w.ZAdd(s.churnDue(tenant), float64(c.Due.UnixMilli()), churnMember(tenant, c.Customer))
	}
	err := w.Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// DueChurns implements marketing.ReactionStore: the oldest due entries first.
func (s *Store) DueChurns(ctx context.Context, partition int, now time.Time, limit int) ([]marketing.DueChurn, error) {
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.keys.Partitioned(service, partition, "churn-due"),
		Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, err
	}
	out := make([]marketing.DueChurn, 0, len(members))
	for _, m := range members {
		tenant, customer, _ := strings.Cut(m, " ")
		out = append(out, marketing.DueChurn{Tenant: tenant, Customer: customer})
	}
	return out, nil
}
