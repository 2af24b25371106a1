// Package redisstore keeps marketing's leads on Redis: a lead is a hash {d: protobuf, v: version}
// under crm:{p<N>}:marketing:<tenant>:lead:<id>; a hash maps normalized e-mails to lead ids; sorted
// sets with equal scores order lead ids (UUIDv7, so time-ordered) for all leads and per status and
// channel. Every write, with its index updates and outbox event, is one atomic commit.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
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

// customerLeads maps customer ids to lead ids, for segments walking customer indexes.
func (k leadKeys) customerLeads() string { return k.Key("customer-leads") }

// consentIndex holds the ids of leads that granted consent on a channel.
func (k leadKeys) consentIndex(channel string) string { return k.Key("leads", "consent", channel) }

// timeIndex is the sorted set of lead ids (UUIDv7, so in time order) that a filter on one field
// reads; all leads for none.
func (k leadKeys) timeIndex(f marketing.LeadFilter) string {
	switch {
	case f.Status != 0:
		return k.Key("leads", "status", f.Status.String())
	case f.Channel != 0:
		return k.Key("leads", "channel", f.Channel.String())
	case f.Campaign != "":
		return k.Key("leads", "campaign", f.Campaign)
	case f.Tag != "":
		return k.Key("leads", "tag", f.Tag)
	}
	return k.Key("leads")
}

// scoreIndex is the sorted set of score members (see scoreMember) of all leads or of one status.
func (k leadKeys) scoreIndex(status marketingv1.LeadStatus) string {
	if status != 0 {
		return k.Key("leads-by-score", "status", status.String())
	}
	return k.Key("leads-by-score")
}

// scoreMember orders leads by score, then id, as plain strings: a zero-padded score and the id.
// Every member of a score index has the same sorted-set score, so a score range is a lexical
// range and a page is O(log n + page) whatever the number of ties.
func scoreMember(score int32, id string) string {
	return fmt.Sprintf("%010d:%s", max(score, 0), id)
}

// idOfMember is the lead id of a time or score index member.
func idOfMember(member string) string {
	return member[strings.LastIndexByte(member, ':')+1:]
}

// indexes are the index entries of a lead.
func (k leadKeys) indexes(l *marketing.Lead) []indexEntry {
	id, score := l.GetId(), scoreMember(l.GetScore(), l.GetId())
	out := []indexEntry{
		{k.timeIndex(marketing.LeadFilter{}), id},
		{k.timeIndex(marketing.LeadFilter{Status: l.GetStatus()}), id},
		{k.scoreIndex(0), score},
		{k.scoreIndex(l.GetStatus()), score},
	}
	if l.GetChannel() != 0 {
		out = append(out, indexEntry{k.timeIndex(marketing.LeadFilter{Channel: l.GetChannel()}), id})
	}
	if l.GetCampaignId() != "" {
		out = append(out, indexEntry{k.timeIndex(marketing.LeadFilter{Campaign: l.GetCampaignId()}), id})
	}
	for _, tag := range l.GetTags() {
		out = append(out, indexEntry{k.timeIndex(marketing.LeadFilter{Tag: tag}), id})
	}
	for _, c := range l.GetConsent() {
		if c.GetGranted() {
			out = append(out, indexEntry{k.consentIndex(c.GetChannel().String()), id})
		}
	}
	return out
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
		Put(k.lead(lead.GetId()), data, lead.GetEtag()).
		HSet(k.customerLeads(), lead.GetCustomerId(), lead.GetId())
	moveIndexes(w, nil, k.indexes(lead))
	k.countLeadWrite(w, lw)
	if lead.GetReferralCode() != "" {
		w.ExpectExists(k.referral(lead.GetReferralCode()))
	}
	appendAll(w, k.Stream(), lw.Events)
	if lw.Lifecycle != nil {
		if err := k.putLifecycle(w, *lw.Lifecycle); err != nil {
			return err
		}
	}
	err = w.Run(ctx, s.rdb)
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
	moveIndexes(w, k.indexes(prev), k.indexes(lead))
	k.countLeadWrite(w, lw)
	k.once(w, lw.Applied)
	err = appendAll(w, k.Stream(), lw.Events).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	if errors.Is(err, commit.ErrAlreadyApplied) {
		return marketing.ErrAlreadyApplied
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
		HDel(k.emails(), lead.GetEmail()).
		HDel(k.customerLeads(), lead.GetCustomerId())
	moveIndexes(w, k.indexes(lead), nil)
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

// ListLeads implements marketing.Store: a time index, or a score index within the score range.
func (s *Store) ListLeads(ctx context.Context, tenant string, q marketing.LeadQuery) ([]*marketing.Lead, string, error) {
	k := s.scope(tenant)
	newLead := func() *marketing.Lead { return &marketing.Lead{} }
	if !q.ByScore {
		return page(ctx, s.rdb, k.timeIndex(q.Filter), everything, q.After, q.Limit, k.lead, newLead)
	}
	bounds := everything
	if r := q.Filter.Score; r != nil {
		// ";" sorts right after ":", so "<max>;" is above every member with score max.
		bounds = lexBounds{max: fmt.Sprintf("[%010d;", r.Max), min: fmt.Sprintf("[%010d:", r.Min)}
	}
	return page(ctx, s.rdb, k.scoreIndex(q.Filter.Status), bounds, q.After, q.Limit,
		func(member string) string { return k.lead(idOfMember(member)) }, newLead)
}
