package redisstore

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.ScoringStore = (*Store)(nil)

// The tenant's scoring rules are one resource hash {d, v}.
func (k leadKeys) scoringRules() string { return k.Key("scoring-rules") }

// ScoringRules implements marketing.ScoringStore and marketing.Store: one round trip.
func (s *Store) ScoringRules(ctx context.Context, tenant string) (*marketing.ScoringRules, error) {
	rules := &marketing.ScoringRules{}
	found, err := get(ctx, s.rdb, s.scope(tenant).scoringRules(), rules)
	if err != nil || !found {
		return nil, err
	}
	return rules, nil
}

// PutScoringRules implements marketing.ScoringStore.
func (s *Store) PutScoringRules(ctx context.Context, tenant string, rules *marketing.ScoringRules, prevEtag string, event []byte) error {
	data, err := proto.Marshal(rules)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	err = commit.New().ExpectVersion(k.scoringRules(), prevEtag).Put(k.scoringRules(), data, rules.GetEtag()).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}
