// Package redisstore keeps marketing's leads on Redis: a lead is a pkg/commit record
// under crm:{p<N>}:marketing:<tenant>:lead:<id>; a bucketed unique index (pkg/commit) maps
// normalized e-mails to lead ids; bucketed indexes order lead ids (UUIDv7, so time-ordered, stored
// as their 16 bytes) for all leads and per status, channel, campaign, tag and consent, score
// members for the by-score lists, and search members (pkg/search, with the id packed) for the name
// and company searches. Every write, with its index updates and outbox event, is one atomic
// commit. A Redis with leads in a layout before bucketed indexes is migrated at start (layout.go).
package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
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
func (k leadKeys) emails() string        { return k.Key("lead-emails") } // bucketed unique index

// customerLeads maps customer ids to lead ids, for segments walking customer indexes.
func (k leadKeys) customerLeads() string { return k.Key("customer-leads") }

// consentIndex holds the ids of leads that granted consent on a channel (bucketed, as leadMember).
func (k leadKeys) consentIndex(channel string) string { return k.Key("leads", "consent", channel) }

// timeIndex is the bucketed index of lead ids (leadMember; UUIDv7, so in time order) that a filter
// on one field reads; all leads for none.
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

// searchIndex is the bucketed search index of lead names or companies: pkg/search members of the
// lead's leadMember, "<text>\x00<16-byte id>", ordered as the members of text ids were.
func (k leadKeys) searchIndex(field string) string { return k.Key("leads", "search", field) }

// scoreIndex is the bucketed index of score members (see scoreMember) of all leads or of one status.
func (k leadKeys) scoreIndex(status marketingv1.LeadStatus) string {
	if status != 0 {
		return k.Key("leads-by-score", "status", status.String())
	}
	return k.Key("leads-by-score")
}

// leadMember is a lead id as a time or consent index keeps it: its 16 bytes, in the id's order
// (commit.PackUUID). The text form is the member in cursors (textMember).
func leadMember(id string) string { return commit.PackUUID(id) }

// scoreMember orders leads by score, then id: the score (at least 0) as 4 big-endian bytes, then
// leadMember. Every member of a score index is ordered by member, so a score range is a lexical
// range and a page is O(log n + page) whatever the number of ties.
func scoreMember(score int32, id string) string {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 20), uint32(max(score, 0)))
	return string(b) + leadMember(id)
}

// scoreBound is the first score member of a score (the last with high).
func scoreBound(score int32, high bool) string {
	b := binary.BigEndian.AppendUint32(nil, uint32(max(score, 0)))
	if high {
		b = append(b, strings.Repeat("\xff", 17)...)
	}
	return string(b)
}

// idOfMember is the lead id of a time or score index member.
func idOfMember(member string) string {
	if len(member) == 20 {
		member = member[4:]
	}
	return commit.UnpackUUID(member)
}

// textMember is a member as a cursor names it: a lead id, or for a score index "<score, ten
// digits>:<id>", the forms members had before they were packed, so page tokens did not change.
func textMember(member string) string {
	if len(member) == 20 {
		return fmt.Sprintf("%010d:%s", binary.BigEndian.Uint32([]byte(member[:4])), idOfMember(member))
	}
	return idOfMember(member)
}

// storedMember is the member a cursor's text names (textMember); "" stays "".
func storedMember(text string) string {
	score, id, ok := strings.Cut(text, ":")
	if !ok {
		return leadMember(text)
	}
	n, err := strconv.ParseInt(score, 10, 32)
	if err != nil {
		return text // no lead's member: the page starts after it, wherever it sorts
	}
	return scoreMember(int32(n), id)
}

// searchLeadID is the lead id of a search member: its last 16 bytes, as a packed id may hold the
// separator byte that search.ID looks for.
func searchLeadID(member string) string {
	if len(member) < 16 {
		return member // no lead's member: its key names no lead
	}
	return commit.UnpackUUID(member[len(member)-16:])
}

// textSearchMember is a search member as a cursor names it: "<text>\x00<id as text>", the form
// members had before their ids were packed, so page tokens did not change.
func textSearchMember(member string) string {
	if len(member) < 17 {
		return member
	}
	return member[:len(member)-16] + searchLeadID(member)
}

// storedSearchMember is the search member a cursor's text names (textSearchMember); "" stays "".
func storedSearchMember(text string) string {
	i := strings.LastIndexByte(text, 0)
	if i < 0 {
		return text // no lead's member: the page starts after it, wherever it sorts
	}
	return text[:i+1] + leadMember(text[i+1:])
}

// indexes are the index entries of a lead.
func (k leadKeys) indexes(l *marketing.Lead) []commit.Entry {
	id, score := leadMember(l.GetId()), scoreMember(l.GetScore(), l.GetId())
	names, companies := search.Members(id, marketing.NameTexts(l)...), search.Members(id, l.GetCompany())
	out := make([]commit.Entry, 0, 6+len(l.GetTags())+len(l.GetConsent())+len(names)+len(companies)) // grown on no write
	out = append(out, []commit.Entry{
		{Index: k.timeIndex(marketing.LeadFilter{}), Member: id, Bucketed: true},
		{Index: k.timeIndex(marketing.LeadFilter{Status: l.GetStatus()}), Member: id, Bucketed: true},
		{Index: k.scoreIndex(0), Member: score, Bucketed: true},
		{Index: k.scoreIndex(l.GetStatus()), Member: score, Bucketed: true},
	}...)
	if l.GetChannel() != 0 {
		out = append(out, commit.Entry{Index: k.timeIndex(marketing.LeadFilter{Channel: l.GetChannel()}), Member: id, Bucketed: true})
	}
	if l.GetCampaignId() != "" {
		out = append(out, commit.Entry{Index: k.timeIndex(marketing.LeadFilter{Campaign: l.GetCampaignId()}), Member: id, Bucketed: true})
	}
	for _, tag := range l.GetTags() {
		out = append(out, commit.Entry{Index: k.timeIndex(marketing.LeadFilter{Tag: tag}), Member: id, Bucketed: true})
	}
	for _, c := range l.GetConsent() {
		if c.GetGranted() {
			out = append(out, commit.Entry{Index: k.consentIndex(c.GetChannel().String()), Member: id, Bucketed: true})
		}
	}
	if len(names) > 0 {
		index := k.searchIndex("name")
		for _, m := range names {
			out = append(out, commit.Entry{Index: index, Member: m, Bucketed: true})
		}
	}
	if len(companies) > 0 {
		index := k.searchIndex("company")
		for _, m := range companies {
			out = append(out, commit.Entry{Index: index, Member: m, Bucketed: true})
		}
	}
	return out
}

// CreateLead implements marketing.Store.
func (s *Store) CreateLead(ctx context.Context, tenant string, lw marketing.LeadWrite) error {
	k := s.scope(tenant)
	return k.createErr(lw, k.createWrite(lw).Run(ctx, s.rdb))
}

// createWrite is the write of a new lead: the record, its unique e-mail and indexes, its
// counters, the person's identity and lifecycle when new, and the events.
func (k leadKeys) createWrite(lw marketing.LeadWrite) *commit.Write {
	lead := lw.Lead
	w := commit.New().
		// A taken e-mail comes back with its lead, so a capture of a known person goes straight
		// to its touch.
		BucketUniqueOrRead(k.emails(), lead.GetEmail(), lead.GetId(), k.lead("")).
		Create(k.lead(lead.GetId()), lead, lead.GetEtag()).
		HSet(k.customerLeads(), lead.GetCustomerId(), lead.GetId()).
		Move(nil, k.indexes(lead))
	if lw.KnownCustomer && lw.Customer == nil {
		k.expectCustomer(w, lead.GetCustomerId())
	}
	k.checkRules(w, lw)
	k.countLeadWrite(w, lw)
	if lead.GetReferralCode() != "" {
		w.ExpectExists(k.referral(lead.GetReferralCode()))
	}
	if lw.Customer != nil {
		k.putCustomer(w, marketing.CustomerWrite{Customer: lw.Customer})
	}
	appendAll(w, k.Stream(), lw.Events)
	if lw.Lifecycle != nil {
		k.putLifecycle(w, *lw.Lifecycle)
	}
	return w
}

// createErr is what a failed createWrite means to the use cases.
func (k leadKeys) createErr(lw marketing.LeadWrite, err error) error {
	lead := lw.Lead
	if k.rulesChanged(err) {
		return marketing.ErrRulesChanged
	}
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		if conflict.Index == k.customerEmails() || conflict.Index == k.customerExternal() {
			return &marketing.IdentityTakenError{Owner: conflict.Owner}
		}
		taken := &marketing.EmailTakenError{LeadID: conflict.Owner}
		owner := &marketing.Lead{}
		if _, found, err := conflict.DecodeOwner(owner); err != nil {
			return err
		} else if found {
			taken.Lead = owner
		}
		return taken
	}
	if lw.KnownCustomer && k.customerRefusal(err, lead.GetCustomerId()) != nil {
		return marketing.ErrPersonStale
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
	k := s.scope(tenant)
	return k.updateErr(lw, k.updateWrite(lw).Run(ctx, s.rdb))
}

// updateWrite is the write of a changed lead, over the version it was read at.
func (k leadKeys) updateWrite(lw marketing.LeadWrite) *commit.Write {
	lead, prev := lw.Lead, lw.Prev
	w := commit.New().Save(k.lead(lead.GetId()), lead, prev.GetEtag(), lead.GetEtag())
	if lead.GetEmail() != prev.GetEmail() {
		w.BucketUnique(k.emails(), lead.GetEmail(), lead.GetId()).BucketRelease(k.emails(), prev.GetEmail())
	}
	if lw.Person != nil {
		// After the lead's own e-mail claim, so another lead with the e-mail is named first.
		k.putCustomer(w, *lw.Person)
	}
	w.Move(k.indexes(prev), k.indexes(lead))
	k.checkRules(w, lw)
	k.countLeadWrite(w, lw)
	events.Guard(w, k.Scope, lw.Applied)
	return appendAll(w, k.Stream(), lw.Events)
}

// updateErr is what a failed updateWrite of lw means to the use cases.
func (k leadKeys) updateErr(lw marketing.LeadWrite, err error) error {
	if k.rulesChanged(err) {
		return marketing.ErrRulesChanged
	}
	if v, ok := errors.AsType[*commit.VersionError](err); ok && lw.Person != nil && v.Key == k.customer(lw.Person.Customer.GetId()) {
		return marketing.ErrPersonStale
	}
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
		if conflict.Index == k.customerEmails() {
			return &marketing.IdentityTakenError{Owner: conflict.Owner}
		}
		return marketing.ErrLeadEmailExists.With("existing_id", conflict.Owner)
	}
	return err
}

// ImportLeads implements marketing.Store: the writes in a few script calls of commit.BatchWrites
// (commit.RunBatch), one pipelined round trip, each atomic with its indexes and events; a write
// with Prev is an update over that version.
func (s *Store) ImportLeads(ctx context.Context, tenant string, writes []marketing.LeadWrite) ([]error, error) {
	k := s.scope(tenant)
	ws := make([]*commit.Write, len(writes))
	for i, lw := range writes {
		if lw.Prev == nil {
			ws[i] = k.createWrite(lw)
		} else {
			ws[i] = k.updateWrite(lw)
		}
	}
	errs, err := commit.RunBatch(ctx, s.rdb, ws)
	if err != nil {
		return nil, err
	}
	for i, lw := range writes {
		if lw.Prev == nil {
			errs[i] = k.createErr(lw, errs[i])
		} else {
			errs[i] = k.updateErr(lw, errs[i])
		}
	}
	return errs, nil
}

// LeadIDsByEmail implements marketing.Store: the lead of each normalized e-mail ("" for none), in
// one round trip.
func (s *Store) LeadIDsByEmail(ctx context.Context, tenant string, emails []string) ([]string, error) {
	if len(emails) == 0 {
		return nil, nil
	}
	return commit.BucketOwners(ctx, s.rdb, s.scope(tenant).emails(), emails...)
}

// checkRules makes the write check that the scoring rules the lead was scored with are still the
// stored ones.
func (k leadKeys) checkRules(w *commit.Write, lw marketing.LeadWrite) {
	if lw.ScoredWith != nil {
		w.ExpectVersion(k.scoringRules(), marketing.StoredRulesEtag(lw.ScoredWith))
	}
}

// rulesChanged reports whether a write failed because the scoring rules changed.
func (k leadKeys) rulesChanged(err error) bool {
	v, ok := errors.AsType[*commit.VersionError](err)
	return ok && v.Key == k.scoringRules()
}

// appendAll adds events to the outbox stream of the write.
func appendAll(w *commit.Write, stream string, events [][]byte) *commit.Write {
	for _, ev := range events {
		w.Append(stream, ev)
	}
	return w
}

// ErasePerson implements marketing.Store: every lead of the person, their identity, their merged
// customers' and every record marketing keeps of them in one atomic write (all in the tenant's
// slot). A record whose index entries the write removes changing since it was read (a stage move,
// a new value) makes it read again; a lead or an identity changing, or a lead appearing for a free
// e-mail, is ErrStale.
func (s *Store) ErasePerson(ctx context.Context, tenant string, e marketing.Erasure) error {
	k := s.scope(tenant)
	customers := e.Merged
	if e.Person != nil {
		customers = append([]*marketing.Customer{e.Person}, e.Merged...)
	}
	for range eraseAttempts {
		w := commit.New()
		for _, lead := range e.Leads {
			w.ExpectVersion(k.lead(lead.GetId()), lead.GetEtag()).
				Delete(k.lead(lead.GetId())).
				Delete(k.leadTouches(lead.GetId())).
				BucketRelease(k.emails(), lead.GetEmail()).
				HDel(k.customerLeads(), lead.GetCustomerId())
			w.Move(k.indexes(lead), nil)
		}
		for _, email := range e.FreeEmails {
			w.BucketExpectFree(k.emails(), email)
		}
		for _, c := range customers {
			k.eraseCustomer(w, c)
			w.HDel(k.customersMerged(), c.GetId()).HDel(k.customerLeads(), c.GetId())
			recs, err := s.customerRecords(ctx, k, c.GetId())
			if err != nil {
				return err
			}
			s.eraseRecords(w, k, tenant, c.GetId(), recs)
			// Every process's customer check forgets the person as the erase commits.
			w.Publish(customerref.Ended, customerref.EndedMessage(tenant, c.GetId()))
		}
		err := appendAll(w, k.Stream(), e.Events).Run(ctx, s.rdb)
		if v, ok := errors.AsType[*commit.VersionError](err); ok && slices.ContainsFunc(customers, func(c *marketing.Customer) bool {
			return v.Key == k.lifecycle(c.GetId()) || v.Key == k.customerValue(c.GetId())
		}) {
			continue
		}
		if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok && conflict.Index == k.emails() {
			return marketing.ErrStale
		}
		if errors.Is(err, commit.ErrVersionMismatch) {
			return marketing.ErrStale
		}
		return err
	}
	return marketing.ErrStale
}

// GetLead implements marketing.Store: one round trip.
func (s *Store) GetLead(ctx context.Context, tenant, id string) (*marketing.Lead, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).lead(id), &marketing.Lead{}, marketing.ErrLeadNotFound)
}

// GetLeads implements marketing.Store: one round trip.
func (s *Store) GetLeads(ctx context.Context, tenant string, ids []string) ([]*marketing.Lead, error) {
	return commit.GetIDs(ctx, s.rdb, ids, s.scope(tenant).lead, func() *marketing.Lead { return &marketing.Lead{} })
}

// ListLeads implements marketing.Store: a time index, or a score index within the score range;
// an e-mail lookup through the unique e-mail index, or a name or company search.
func (s *Store) ListLeads(ctx context.Context, tenant string, q marketing.LeadQuery) (page.Page[*marketing.Lead], error) {
	k := s.scope(tenant)
	switch f := q.Filter; {
	case f.Email != "":
		return s.leadByEmail(ctx, k, f, q.After)
	case f.ExternalID != "":
		return s.leadByExternalID(ctx, k, f, q.After)
	case f.Name != "":
		return s.searchLeads(ctx, k, "name", f.Name, f, q.Request, marketing.NameTexts)
	case f.Company != "":
		return s.searchLeads(ctx, k, "company", f.Company, f, q.Request, func(l *marketing.Lead) []string { return []string{l.GetCompany()} })
	}
	r := commit.Range{Index: k.timeIndex(q.Filter), Desc: true, Limit: q.Limit, Bucketed: true}
	if q.After != "" {
		r.After = storedMember(q.After)
	}
	if q.ByScore {
		r.Index = k.scoreIndex(q.Filter.Status)
		if sr := q.Filter.Score; sr != nil {
			r.Min, r.Max = "["+scoreBound(sr.Min, false), "["+scoreBound(sr.Max, true)
		}
	}
	p, err := commit.List(ctx, s.rdb, r, func(member string) string { return k.lead(idOfMember(member)) },
		func() *marketing.Lead { return &marketing.Lead{} })
	if p.Next != "" {
		p.Next = textMember(p.Next)
	}
	return p, err
}

// leadByEmail is the page of the one lead with the e-mail, if it has the filter's other field:
// two round trips.
func (s *Store) leadByEmail(ctx context.Context, k leadKeys, f marketing.LeadFilter, after string) (page.Page[*marketing.Lead], error) {
	ids, err := commit.BucketOwners(ctx, s.rdb, k.emails(), f.Email)
	if err != nil {
		return page.Page[*marketing.Lead]{}, err
	}
	id := ids[0]
	if id == "" || after != "" {
		return page.Page[*marketing.Lead]{}, nil
	}
	lead, err := commit.Get(ctx, s.rdb, k.lead(id), &marketing.Lead{}, nil)
	if err != nil || lead == nil || lead.GetEmail() != f.Email || !f.Found(lead) {
		return page.Page[*marketing.Lead]{}, err
	}
	return page.Page[*marketing.Lead]{Items: []*marketing.Lead{lead}}, nil
}

// leadOfExternalID reads the lead of the customer an external id names, in one call: the
// registry maps the id to a customer, and customer-leads the customer to their lead.
var leadOfExternalID = redis.NewScript(`
local customer = redis.call('HGET', KEYS[1], ARGV[1])
if not customer then return false end
return redis.call('HGET', KEYS[2], customer)`)

// leadByExternalID is the page of the lead of the person with the external id, if it has the
// filter's other field: two round trips.
func (s *Store) leadByExternalID(ctx context.Context, k leadKeys, f marketing.LeadFilter, after string) (page.Page[*marketing.Lead], error) {
	id, err := leadOfExternalID.RunRO(ctx, s.rdb, []string{k.customerExternal(), k.customerLeads()}, f.ExternalID).Text()
	if errors.Is(err, redis.Nil) || after != "" {
		return page.Page[*marketing.Lead]{}, nil
	}
	if err != nil {
		return page.Page[*marketing.Lead]{}, err
	}
	lead, err := commit.Get(ctx, s.rdb, k.lead(id), &marketing.Lead{}, nil)
	if err != nil || lead == nil || !f.Found(lead) {
		return page.Page[*marketing.Lead]{}, err
	}
	return page.Page[*marketing.Lead]{Items: []*marketing.Lead{lead}}, nil
}

// searchBudget is how many index members one search page examines at most per lead it returns.
const searchBudget = 5

// searchLeads reads a page of the leads whose field has a word starting with the prefix, in the
// order of the matched text, each once, and having the filter's other field. Its cursors are
// search members with the id as text (textSearchMember).
func (s *Store) searchLeads(ctx context.Context, k leadKeys, field string, p search.Prefix, f marketing.LeadFilter,
	req page.Request, texts func(*marketing.Lead) []string) (page.Page[*marketing.Lead], error) {
	lo, hi := p.Range()
	r := commit.Range{Index: k.searchIndex(field), Min: lo, Max: hi, After: storedSearchMember(req.After),
		Limit: req.Limit, Bucketed: true}
	out, err := commit.ListWhere(ctx, s.rdb, r, func(m string) string { return k.lead(searchLeadID(m)) },
		func() *marketing.Lead { return &marketing.Lead{} },
		func(member string, l *marketing.Lead) bool {
			matched, ok := p.Match(leadMember(l.GetId()), texts(l)...)
			return ok && matched == member && f.Found(l)
		}, searchBudget*req.Limit)
	if out.Next != "" {
		out.Next = textSearchMember(out.Next)
	}
	return out, err
}
