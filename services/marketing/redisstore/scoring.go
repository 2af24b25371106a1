package redisstore

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.ScoringStore = (*Store)(nil)

// The tenant's scoring rules are one record (pkg/commit).
func (k leadKeys) scoringRules() string { return k.Key("scoring-rules") }

// ScoringRules implements marketing.ScoringStore and marketing.Store: one round trip.
func (s *Store) ScoringRules(ctx context.Context, tenant string) (*marketing.ScoringRules, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).scoringRules(), &marketing.ScoringRules{}, nil)
}

// PutScoringRules implements marketing.ScoringStore.
func (s *Store) PutScoringRules(ctx context.Context, tenant string, rules *marketing.ScoringRules, prevEtag string, event []byte) error {
	k := s.scope(tenant)
	err := commit.New().Save(k.scoringRules(), rules, prevEtag, rules.GetEtag()).Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
