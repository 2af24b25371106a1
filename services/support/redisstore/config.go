package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// SlaPolicies implements support.Store: one round trip for the four priorities.
func (s *Store) SlaPolicies(ctx context.Context, tenant string) (map[supportv1.TicketPriority]*support.SlaPolicy, error) {
	k := s.scope(tenant)
	var priorities []supportv1.TicketPriority
	var keys []string
	for value, name := range supportv1.TicketPriority_name {
		if value != 0 {
			priorities = append(priorities, supportv1.TicketPriority(value))
			keys = append(keys, k.policy(name))
		}
	}
	policies, err := commit.GetMany(ctx, s.rdb, keys, func() *support.SlaPolicy { return &support.SlaPolicy{} })
	if err != nil {
		return nil, err
	}
	out := map[supportv1.TicketPriority]*support.SlaPolicy{}
	for i, p := range policies {
		if p != nil {
			out[priorities[i]] = p
		}
	}
	return out, nil
}

// SaveSlaPolicy implements support.Store.
func (s *Store) SaveSlaPolicy(ctx context.Context, tenant string, p *support.SlaPolicy, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).policy(p.GetPriority().String()), p, p.GetEtag(), prev, event)
}

// Settings implements support.Store.
func (s *Store) Settings(ctx context.Context, tenant string) (*support.SupportSettings, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).settings(), &support.SupportSettings{}, nil)
}

// SaveSettings implements support.Store.
func (s *Store) SaveSettings(ctx context.Context, tenant string, st *support.SupportSettings, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).settings(), st, st.GetEtag(), prev, event)
}

func (s *Store) saveConfig(ctx context.Context, tenant, key string, msg proto.Message, version, prev string, event []byte) error {
	return staleAsDomain(commit.New().Save(key, msg, prev, version).Append(s.scope(tenant).Stream(), event).Run(ctx, s.rdb))
}

// SaveNpsResponse implements support.Store.
func (s *Store) SaveNpsResponse(ctx context.Context, tenant string, r *support.NpsResponse, tally support.Tally, event []byte) error {
	k := s.scope(tenant)
	w := commit.New().Save(k.nps(r.GetId()), r, "", "1")
	for field, delta := range tally {
		w.HIncrBy(k.stats(), field, delta)
	}
	return staleAsDomain(w.Append(k.Stream(), event).Run(ctx, s.rdb))
}

// Tally implements support.Store: one round trip.
func (s *Store) Tally(ctx context.Context, tenant string) (support.Tally, error) {
	m, err := s.rdb.HGetAll(ctx, s.scope(tenant).stats()).Result()
	if err != nil {
		return nil, err
	}
	out := make(support.Tally, len(m))
	for field, v := range m {
		if out[field], err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("redisstore: counter %s: %w", field, err)
		}
	}
	return out, nil
}
