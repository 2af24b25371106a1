// Package redisstore keeps marketing's leads on Redis: a lead is a hash {d: protobuf, v: version}
// under crm:{p<N>}:marketing:<tenant>:lead:<id>; a hash maps normalized e-mails to lead ids; sorted
// sets with equal scores order lead ids (UUIDv7, so time-ordered) for all leads and per status and
// channel. Every write, with its index updates and outbox event, is one atomic commit.
package redisstore

import (
	"context"
	"errors"

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
func (s *Store) CreateLead(ctx context.Context, tenant string, lw marketing.LeadWrite) error {
	lead := lw.Lead
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
	k.countLeadWrite(w, lw)
	if lead.GetReferralCode() != "" {
		w.ExpectExists(k.referral(lead.GetReferralCode()))
	}
	err = appendAll(w, k.Stream(), lw.Events).Run(ctx, s.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return &marketing.EmailTakenError{LeadID: conflict.Owner}
	}
	if missing, ok := errors.AsType[*commit.MissingError](err); ok {
		if missing.Key == k.referral(lead.GetReferralCode()) {
			return marketing.ErrUnknownReferralCode
		}
		return marketing.ErrUnknownCampaign
	}
	return err
}

// UpdateLead implements marketing.Store.
func (s *Store) UpdateLead(ctx context.Context, tenant string, lw marketing.LeadWrite) error {
	lead, prev := lw.Lead, lw.Prev
	data, err := proto.Marshal(lead)
	if err != nil {
		return err
	}
	k := s.scope(tenant)
	w := commit.New().
		ExpectVersion(k.lead(lead.GetId()), prev.GetEtag()).
		Put(k.lead(lead.GetId()), data, lead.GetEtag())
	if lead.GetEmail() != prev.GetEmail() {
		w.Unique(k.emails(), lead.GetEmail(), lead.GetId()).HDel(k.emails(), prev.GetEmail())
	}
	moveIndexes(w, k.indexes(prev), k.indexes(lead), lead.GetId())
	k.countLeadWrite(w, lw)
	err = appendAll(w, k.Stream(), lw.Events).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	if _, ok := errors.AsType[*commit.MissingError](err); ok {
		return marketing.ErrUnknownCampaign
	}
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		return marketing.ErrLeadEmailExists.With("existing_id", conflict.Owner)
	}
	return err
}

// appendAll adds events to the outbox stream of the write.
func appendAll(w *commit.Write, stream string, events [][]byte) *commit.Write {
	for _, ev := range events {
		w.Append(stream, ev)
	}
	return w
}

// EraseLead implements marketing.Store.
func (s *Store) EraseLead(ctx context.Context, tenant string, lead *marketing.Lead, event []byte) error {
	k := s.scope(tenant)
	w := commit.New().ExpectVersion(k.lead(lead.GetId()), lead.GetEtag()).
		Delete(k.lead(lead.GetId())).
		HDel(k.emails(), lead.GetEmail())
	for _, ix := range k.indexes(lead) {
		w.ZRem(ix, lead.GetId())
	}
	err := w.Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// GetLead implements marketing.Store: one round trip.
func (s *Store) GetLead(ctx context.Context, tenant, id string) (*marketing.Lead, error) {
	lead := &marketing.Lead{}
	found, err := get(ctx, s.rdb, s.scope(tenant).lead(id), lead)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, marketing.ErrLeadNotFound
	}
	return lead, nil
}

// ListLeads implements marketing.Store.
func (s *Store) ListLeads(ctx context.Context, tenant string, q marketing.LeadQuery) ([]*marketing.Lead, string, error) {
	k := s.scope(tenant)
	return page(ctx, s.rdb, k.index(q.Index), q.After, q.Limit, k.lead, func() *marketing.Lead { return &marketing.Lead{} })
}
