package redisstore

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.LifecycleStore = (*Store)(nil)

// appliedTTL is how long the marker of an applied event is kept: far longer than any redelivery
// (streams keep events for hours), and the history keeps its id for good anyway.
const appliedTTL = 30 * 24 * 60 * 60

// Lifecycle keys: the customer's lifecycle, the funnel counters, customers per stage and at risk
// (segments read them), and markers of applied events.
func (k leadKeys) lifecycle(customer string) string { return k.Key("lifecycle", customer) }
func (k leadKeys) funnel() string                   { return k.Key("lifecycle-funnel") }
func (k leadKeys) atRisk() string                   { return k.Key("customers", "at-risk") }
func (k leadKeys) applied(eventID string) string    { return k.Key("lifecycle-applied", eventID) }
func (k leadKeys) stageIndex(s marketing.Stage) string {
	return k.Key("customers", "stage", s.String())
}

// Lifecycle implements marketing.LifecycleStore: one round trip.
func (s *Store) Lifecycle(ctx context.Context, tenant, customer string) (*marketing.CustomerLifecycle, error) {
	lc := &marketing.CustomerLifecycle{}
	found, err := get(ctx, s.rdb, s.scope(tenant).lifecycle(customer), lc)
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
	w := commit.New()
	if err := s.scope(tenant).putLifecycle(w, lw); err != nil {
		return err
	}
	err := w.Run(ctx, s.rdb)
	switch {
	case errors.Is(err, commit.ErrVersionMismatch):
		return marketing.ErrStale
	case errors.Is(err, commit.ErrAlreadyApplied):
		return marketing.ErrAlreadyApplied
	}
	return err
}

// putLifecycle adds a lifecycle change to a write: the version check, the applied marker, the
// lifecycle, its indexes, the funnel counters and the events.
func (k leadKeys) putLifecycle(w *commit.Write, lw marketing.LifecycleWrite) error {
	data, err := proto.Marshal(lw.Next)
	if err != nil {
		return err
	}
	key := k.lifecycle(lw.Next.GetCustomerId())
	w.ExpectVersion(key, lw.Prev.GetEtag())
	if lw.EventID != "" {
		w.Once(k.applied(lw.EventID), appliedTTL)
	}
	w.Put(key, data, lw.Next.GetEtag())
	customer := lw.Next.GetCustomerId()
	if from, to := lw.Prev.GetStage(), lw.Next.GetStage(); from != to {
		if from != marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED {
			w.ZRem(k.stageIndex(from), customer)
		}
		w.ZAdd(k.stageIndex(to), 0, customer)
	}
	if was, is := lw.Prev.GetAtRisk(), lw.Next.GetAtRisk(); was != is {
		if is {
			w.ZAdd(k.atRisk(), 0, customer)
		} else {
			w.ZRem(k.atRisk(), customer)
		}
	}
	for field, n := range lw.Funnel {
		w.HIncrBy(k.funnel(), field, n)
	}
	appendAll(w, k.Stream(), lw.Events)
	return nil
}

// FunnelCounters implements marketing.LifecycleStore: one HGETALL of a bounded hash.
func (s *Store) FunnelCounters(ctx context.Context, tenant string) (map[string]int64, error) {
	raw, err := s.rdb.HGetAll(ctx, s.scope(tenant).funnel()).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(raw))
	for f, v := range raw {
		out[f], _ = strconv.ParseInt(v, 10, 64)
	}
	return out, nil
}
