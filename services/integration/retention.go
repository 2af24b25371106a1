package integration

import (
	"context"

	"github.com/crmcycle/crm/services/integration/redisstore"
)

// sweepBatch bounds the history entries one trim removes, and the tenants read at once.
const sweepBatch = 200

// TrimHistory is the retention sweep of partition p: in each of its tenants with a history it
// removes the entries older than the tenant's retention, from the audit log and from every index
// and timeline that lists them, and trims the endpoints' delivery logs to deliveryTTL. Recording
// an event neither trims nor re-expires anything; this does it once per sweep, by age. It returns
// how many history entries it removed.
func (r *Recorder) TrimHistory(ctx context.Context, p int) (int, error) {
	removed, after := 0, ""
	for {
		tenants, err := r.store.Tenants(ctx, p, after, sweepBatch)
		if err != nil {
			return removed, err
		}
		for _, tenant := range tenants {
			n, err := r.trimTenant(ctx, tenant)
			removed += n
			if err != nil {
				return removed, err
			}
		}
		if len(tenants) < sweepBatch {
			return removed, nil
		}
		after = tenants[len(tenants)-1]
	}
}

func (r *Recorder) trimTenant(ctx context.Context, tenant string) (int, error) {
	retention, err := r.settings.retention(ctx, tenant)
	if err != nil {
		return 0, err
	}
	now := r.now()
	cutoff := redisstore.CutoffID(now.Add(-retention))
	removed := 0
	for {
		ids, err := r.store.Expired(ctx, tenant, cutoff, sweepBatch)
		if err != nil {
			return removed, err
		}
		if len(ids) == 0 {
			break
		}
		entries, err := r.store.Entries(ctx, tenant, ids)
		if err != nil {
			return removed, err
		}
		var customers []string
		for _, e := range entries {
			if e != nil && e.GetCustomerId() != "" {
				customers = append(customers, e.GetCustomerId())
			}
		}
		chains, err := r.store.MergeChains(ctx, tenant, customers)
		if err != nil {
			return removed, err
		}
		sc := r.store.Scope(tenant)
		trimmed := make([]redisstore.Trimmed, len(ids))
		for i, id := range ids {
			trimmed[i].ID = id
			if e := entries[i]; e != nil {
				// The timelines too: the customer's, and those a merge moved it to.
				trimmed[i].Indexes = r.indexes(tenant, e)
				for _, c := range chains[e.GetCustomerId()] {
					trimmed[i].Indexes = append(trimmed[i].Indexes, redisstore.TimelineKey(sc, c))
				}
			}
		}
		if err := r.store.Trim(ctx, tenant, now, trimmed); err != nil {
			return removed, err
		}
		removed += len(ids)
		if len(ids) < sweepBatch {
			break
		}
	}
	eps, err := r.endpointsOf(ctx, tenant, true)
	if err != nil {
		return removed, err
	}
	logCutoff := redisstore.CutoffID(now.Add(-deliveryTTL))
	for _, ep := range eps.list {
		if err := r.store.TrimLog(ctx, tenant, ep.GetId(), logCutoff); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
