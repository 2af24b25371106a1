// Package redisstore keeps marketing's leads on Redis: a lead is a hash {d: protobuf, v: version}
// under crm:{p<N>}:marketing:<tenant>:lead:<id>; a hash maps normalized e-mails to lead ids; sorted
// sets with equal scores order lead ids (UUIDv7, so time-ordered) for all leads and per status and
// channel. Every write, with its index updates and outbox event, is one atomic commit.
package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/services/marketing"
)

const service = "marketing"

var _ marketing.Store = (*Store)(nil)

// Store is the Redis implementation of marketing.Store.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space
}

// New returns a store.
func New(rdb redis.UniversalClient, keys *keyspace.Space) *Store {
	return &Store{rdb: rdb, keys: keys}
}

type leadKeys struct{ keyspace.Scope }

func (s *Store) scope(tenant string) leadKeys { return leadKeys{s.keys.Scope(service, tenant)} }

func (k leadKeys) lead(id string) string { return k.Key("lead", id) }
func (k leadKeys) emails() string        { return k.Key("lead-emails") }

func (k leadKeys) index(ix marketing.LeadIndex) string {
	switch {
	case ix.Status != 0:
		return k.Key("leads", "status", ix.Status.String())
	case ix.Channel != 0:
		return k.Key("leads", "channel", ix.Channel.String())
	}
	return k.Key("leads")
}

// indexes are the sorted sets a lead belongs to.
func (k leadKeys) indexes(l *marketing.Lead) []string {
	return []string{
		k.index(marketing.LeadIndex{}),
		k.index(marketing.LeadIndex{Status: l.GetStatus()}),
		k.index(marketing.LeadIndex{Channel: l.GetChannel()}),
	}
}

// CreateLead implements marketing.Store.
func (s *Store) CreateLead(ctx context.Context, tenant string, lead *marketing.Lead, event []byte) error {
	data, err := proto.Marshal(lead)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().
		ExpectVersion(k.lead(lead.GetId()), "").
		Unique(k.emails(), lead.GetEmail(), lead.GetId()).
		Put(k.lead(lead.GetId()), data, lead.GetEtag())
	for _, ix := range k.indexes(lead) {
		w.ZAdd(ix, 0, lead.GetId())
	}
	err = w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return &marketing.EmailTakenError{LeadID: conflict.Owner}
	}
	return err
}

// UpdateLead implements marketing.Store.
func (s *Store) UpdateLead(ctx context.Context, tenant string, lead, prev *marketing.Lead, event []byte) error {
	data, err := proto.Marshal(lead)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().
		ExpectVersion(k.lead(lead.GetId()), prev.GetEtag()).
		Put(k.lead(lead.GetId()), data, lead.GetEtag())
	oldIdx, newIdx := k.indexes(prev), k.indexes(lead)
	for i := range newIdx {
		if oldIdx[i] != newIdx[i] {
			w.ZRem(oldIdx[i], lead.GetId()).ZAdd(newIdx[i], 0, lead.GetId())
		}
	}
	err = w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// GetLead implements marketing.Store: one round trip.
func (s *Store) GetLead(ctx context.Context, tenant, id string) (*marketing.Lead, error) {
	data, err := s.rdb.HGet(ctx, s.scope(tenant).lead(id), commit.FieldData).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, marketing.ErrLeadNotFound
	}
	if err != nil {
		return nil, err
	}
	return decode(data)
}

// ListLeads implements marketing.Store: two round trips (the index range, then the page's leads
// in one pipeline), whatever the size of the collection.
func (s *Store) ListLeads(ctx context.Context, tenant string, q marketing.LeadQuery) ([]*marketing.Lead, string, error) {
	k := s.scope(tenant)
	start := "+"
	if q.After != "" {
		start = "(" + q.After
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: k.index(q.Index), Start: start, Stop: "-", ByLex: true, Rev: true, Count: int64(q.Limit + 1),
	}).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
		next = ids[len(ids)-1]
	}
	if len(ids) == 0 {
		return nil, "", nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, k.lead(id), commit.FieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", err
	}
	leads := make([]*marketing.Lead, 0, len(ids))
	for _, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, "", err
		}
		l, err := decode(data)
		if err != nil {
			return nil, "", err
		}
		leads = append(leads, l)
	}
	return leads, next, nil
}

func decode(data []byte) (*marketing.Lead, error) {
	l := &marketing.Lead{}
	if err := proto.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("redisstore: decode lead: %w", err)
	}
	return l, nil
}
