package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.LifecycleStore = (*Store)(nil)

// Lifecycle keys: the customer's lifecycle, the funnel counters, customers per stage and at risk
// (segments read them).
func (k leadKeys) lifecycle(customer string) string { return k.Key("lifecycle", customer) }
func (k leadKeys) funnel() string                   { return k.Key("lifecycle-funnel") }
func (k leadKeys) periodFunnel(p string) string     { return k.Key("lifecycle-funnel", p) }
func (k leadKeys) atRisk() string                   { return k.Key("customers", "at-risk") }
func (k leadKeys) stageIndex(s marketing.Stage) string {
	return k.Key("customers", "stage", s.String())
}

// Lifecycle implements marketing.LifecycleStore: one round trip.
func (s *Store) Lifecycle(ctx context.Context, tenant, customer string) (*marketing.CustomerLifecycle, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).lifecycle(customer), &marketing.CustomerLifecycle{}, marketing.ErrLifecycleNotFound)
}

// RegisteredLifecycle implements marketing.LifecycleStore: the registry's record and the lifecycle
// in one round trip.
func (s *Store) RegisteredLifecycle(ctx context.Context, tenant, customer string) (*marketing.CustomerLifecycle, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	registered := commit.Read(ctx, pipe, k.customer(customer))
	read := commit.Read(ctx, pipe, k.lifecycle(customer))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	person := &marketing.Customer{}
	switch known, err := registered.Decode(person); {
	case err != nil:
		return nil, err
	case !known:
		return nil, customerref.NotFound("customer_id")
	case person.GetMergedInto() != "":
		return nil, customerref.Merged("customer_id", person.GetMergedInto())
	}
	lc := &marketing.CustomerLifecycle{}
	found, err := read.Decode(lc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, marketing.ErrLifecycleNotFound
	}
	return lc, nil
}

// PutLifecycle implements marketing.LifecycleStore.
func (s *Store) PutLifecycle(ctx context.Context, tenant string, lw marketing.LifecycleWrite) error {
	w, k := commit.New(), s.scope(tenant)
	k.putLifecycle(w, lw)
	err := w.Run(ctx, s.rdb)
	if refused := k.customerRefusal(err, lw.Next.GetCustomerId()); refused != nil {
		return refused
	}
	switch {
	case errors.Is(err, commit.ErrVersionMismatch):
		return marketing.ErrStale
	case errors.Is(err, commit.ErrAlreadyApplied):
		return marketing.ErrAlreadyApplied
	}
	return err
}

// putLifecycle adds a lifecycle change to a write: the version check, the redelivery guard, the
// lifecycle, its indexes, the funnel counters and the events.
func (k leadKeys) putLifecycle(w *commit.Write, lw marketing.LifecycleWrite) {
	if lw.CheckCustomer {
		k.expectCustomer(w, lw.Next.GetCustomerId())
	}
	events.Guard(w, k.Scope, lw.Applied)
	if lw.CheckFacts {
		w.ExpectVersion(k.facts(lw.Next.GetCustomerId()), lw.FactsVersion)
	}
	if lw.CheckSettings {
		w.ExpectVersion(k.lifecycleSettings(), lw.SettingsVersion)
	}
	if lw.Prev == nil {
		w.Create(k.lifecycle(lw.Next.GetCustomerId()), lw.Next, lw.Next.GetEtag())
	} else {
		w.Save(k.lifecycle(lw.Next.GetCustomerId()), lw.Next, lw.Prev.GetEtag(), lw.Next.GetEtag())
	}
	w.Move(k.lifecycleIndexes(lw.Prev), k.lifecycleIndexes(lw.Next))
	for field, n := range lw.Funnel {
		w.HIncrBy(k.funnel(), field, n)
	}
	for _, p := range lw.FunnelPeriods {
		for field, n := range lw.PeriodFunnel {
			w.HIncrBy(k.periodFunnel(p), field, n)
		}
	}
	appendAll(w, k.Stream(), lw.Events)
}

// lifecycleIndexes are the index entries of a customer's lifecycle: its stage, and at risk; none
// for nil (before the first stage).
func (k leadKeys) lifecycleIndexes(lc *marketing.CustomerLifecycle) []commit.Entry {
	var out []commit.Entry
	if lc.GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED {
		out = append(out, commit.Entry{Index: k.stageIndex(lc.GetStage()), Member: lc.GetCustomerId()})
	}
	if lc.GetAtRisk() {
		out = append(out, commit.Entry{Index: k.atRisk(), Member: lc.GetCustomerId()})
	}
	return out
}

// FunnelCounters implements marketing.LifecycleStore: one HGETALL of a bounded hash.
func (s *Store) FunnelCounters(ctx context.Context, tenant string) (map[string]int64, error) {
	raw, err := s.rdb.HGetAll(ctx, s.scope(tenant).funnel()).Result()
	if err != nil {
		return nil, err
	}
	return counters(raw), nil
}

// PeriodFunnelCounters implements marketing.LifecycleStore: one pipeline of bounded hashes.
func (s *Store) PeriodFunnelCounters(ctx context.Context, tenant string, periods []string) ([]map[string]int64, error) {
	k, pipe := s.scope(tenant), s.rdb.Pipeline()
	reads := make([]*redis.MapStringStringCmd, len(periods))
	for i, p := range periods {
		reads[i] = pipe.HGetAll(ctx, k.periodFunnel(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]map[string]int64, len(periods))
	for i, r := range reads {
		out[i] = counters(r.Val())
	}
	return out, nil
}

func counters(raw map[string]string) map[string]int64 {
	out := make(map[string]int64, len(raw))
	for f, v := range raw {
		out[f], _ = strconv.ParseInt(v, 10, 64)
	}
	return out
}

// The tenant's lifecycle settings are one record (pkg/commit); its version is the etag.
func (k leadKeys) lifecycleSettings() string { return k.Key("lifecycle-settings") }

// LifecycleSettings implements marketing.LifecycleSettingsStore: one round trip.
func (s *Store) LifecycleSettings(ctx context.Context, tenant string) (*marketing.LifecycleSettings, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).lifecycleSettings(), &marketing.LifecycleSettings{}, nil)
}

// PutLifecycleSettings implements marketing.LifecycleSettingsStore.
func (s *Store) PutLifecycleSettings(ctx context.Context, tenant string, st *marketing.LifecycleSettings, prevEtag string, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().Save(k.lifecycleSettings(), st, prevEtag, st.GetEtag()).Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
