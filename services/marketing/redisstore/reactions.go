package redisstore

import (
	"context"
	"errors"
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

func churnMember(tenant, customer string) string { return tenant + " " + customer }

// ScheduleChurn implements marketing.ReactionStore.
func (s *Store) ScheduleChurn(ctx context.Context, tenant, customer string, due time.Time) error {
	return commit.New().ZAdd(s.churnDue(tenant), float64(due.UnixMilli()), churnMember(tenant, customer)).Run(ctx, s.rdb)
}

// CancelChurn implements marketing.ReactionStore.
func (s *Store) CancelChurn(ctx context.Context, tenant, customer string) error {
	return commit.New().ZRem(s.churnDue(tenant), churnMember(tenant, customer)).Run(ctx, s.rdb)
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
