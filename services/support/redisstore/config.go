package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// SlaPolicies implements support.Store: one round trip for the four priorities.
func (s *Store) SlaPolicies(ctx context.Context, tenant string) (map[supportv1.TicketPriority]*support.SlaPolicy, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	cmds := map[supportv1.TicketPriority]*redis.StringCmd{}
	for value, name := range supportv1.TicketPriority_name {
		if value != 0 {
			cmds[supportv1.TicketPriority(value)] = pipe.HGet(ctx, k.policy(name), commit.FieldData)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := map[supportv1.TicketPriority]*support.SlaPolicy{}
	for priority, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p := &support.SlaPolicy{}
		if err := proto.Unmarshal(data, p); err != nil {
			return nil, fmt.Errorf("redisstore: decode SLA policy %s: %w", priority, err)
		}
		out[priority] = p
	}
	return out, nil
}

// SaveSlaPolicy implements support.Store.
func (s *Store) SaveSlaPolicy(ctx context.Context, tenant string, p *support.SlaPolicy, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).policy(p.GetPriority().String()), p, p.GetEtag(), prev, event)
}

// Settings implements support.Store.
func (s *Store) Settings(ctx context.Context, tenant string) (*support.SupportSettings, error) {
	st := &support.SupportSettings{}
	found, err := get(ctx, s.rdb, s.scope(tenant).settings(), st)
	if err != nil || !found {
		return nil, err
	}
	return st, nil
}

// SaveSettings implements support.Store.
func (s *Store) SaveSettings(ctx context.Context, tenant string, st *support.SupportSettings, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).settings(), st, st.GetEtag(), prev, event)
}

func (s *Store) saveConfig(ctx context.Context, tenant, key string, msg proto.Message, version, prev string, event []byte) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	return staleAsDomain(commit.New().ExpectVersion(key, prev).Put(key, data, version).Append(k.Stream(), event).Run(ctx, s.rdb))
}

// SaveNpsResponse implements support.Store.
func (s *Store) SaveNpsResponse(ctx context.Context, tenant string, r *support.NpsResponse, tally support.Tally, event []byte) error {
	data, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().ExpectVersion(k.nps(r.GetId()), "").Put(k.nps(r.GetId()), data, "1")
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
