package marketing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/protoupdate"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// LeadColumns are the documented columns of a lead import: email is required; channel is a
// Channel name (CHANNEL_WEB or WEB, any case); tags are a list (importer.SplitList: separated by
// ";", a "\" escaping one within a tag). Other columns are
// ignored, so a file that ListLeads' export wrote imports as it is.
var LeadColumns = []string{"email", "givenName", "familyName", "company", "channel", "tags", "externalId"}

// ImportedLead is one parsed row of a lead import.
type ImportedLead struct {
	Lead       *Lead // email, names, company, channel, tags
	ExternalID string
}

// LeadImport is the lead kind of an import: an upsert on the normalized e-mail.
func (l *Leads) LeadImport() importer.Kind[ImportedLead] {
	return importer.Kind[ImportedLead]{
		Name: "leads", Columns: LeadColumns, Required: []string{"email"},
		Parse:   l.parseImported,
		Key:     func(in ImportedLead) string { return in.Lead.GetEmail() },
		KeyName: "e-mail",
		Apply:   l.Import,
	}
}

func (l *Leads) parseImported(row importer.Row) (ImportedLead, *typev1.ImportRowError) {
	email, err := NormalizeEmail(row.Value("email"))
	if err != nil {
		return ImportedLead{}, importer.RowError("email", importer.ReasonInvalidEmail, "must be a plain e-mail address such as ada@example.com")
	}
	channel, ok := ParseChannel(row.Value("channel"))
	if !ok {
		return ImportedLead{}, importer.RowError("channel", importer.ReasonInvalidEnum,
			fmt.Sprintf("%q is not a channel (EMAIL, SOCIAL, ADS, CONTENT, REFERRAL, EVENT, WEB)", row.Value("channel")))
	}
	lead := &Lead{Email: email, GivenName: row.Value("givenName"), FamilyName: row.Value("familyName"),
		Company: row.Value("company"), Channel: channel}
	for _, t := range row.List("tags") {
		if !slices.Contains(lead.Tags, t) {
			lead.Tags = append(lead.Tags, t)
		}
	}
	if err := protoupdate.Validate(l.validator, "", lead); err != nil {
		field, msg := "", err.Error()
		if e, ok := apierr.As(err); ok && len(e.Fields) > 0 {
			field, msg = strings.TrimPrefix(e.Fields[0].Field, "."), e.Fields[0].Description
		}
		return ImportedLead{}, importer.RowError(protoJSONName(field), importer.ReasonInvalidValue, msg)
	}
	return ImportedLead{Lead: lead, ExternalID: row.Value("externalId")}, nil
}

// ParseChannel reads a channel by its name with or without the CHANNEL_ prefix, any case; "" is
// no channel.
func ParseChannel(s string) (typev1.Channel, bool) {
	if s == "" {
		return typev1.Channel_CHANNEL_UNSPECIFIED, true
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "CHANNEL_") {
		name = "CHANNEL_" + name
	}
	v, ok := typev1.Channel_value[name]
	if !ok || v == 0 {
		return 0, false
	}
	return typev1.Channel(v), true
}

// importAttempts bounds the rounds of a batch's rows that lost a race with a concurrent write.
const importAttempts = 8

// Import upserts a batch of imported leads with distinct e-mails: a new e-mail makes a lead (and,
// for a person the registry does not know, a customer of origin IMPORT who enters the lifecycle
// as a SUSPECT, in the same atomic write); a known one gets the row's non-empty names and company
// and its tags; a lead that holds all of it already is skipped, writing nothing. Reads take three
// round trips for the batch, the writes one.
func (l *Leads) Import(ctx context.Context, tenant string, rows []ImportedLead) ([]importer.Outcome, error) {
	out := make([]importer.Outcome, len(rows))
	todo := make([]int, len(rows))
	for i := range rows {
		todo[i] = i
	}
	// sent are the writes of rounds whose round trip failed in transit: they may have been
	// applied, even after a later round's reads. A row found exactly as one of them made it was
	// written by this import, and counts as what it was planned as rather than as skipped. The
	// store failing is retried here, not by the runner: only this loop knows what was sent.
	sent := map[leadMark]importer.Result{}
	lost, transit := 0, 0
	for round := 0; len(todo) > 0; round++ {
		if lost == importAttempts {
			for _, i := range todo {
				out[i] = importer.Outcome{Err: importer.RowError("email", importer.ReasonConflict, "the lead kept changing concurrently; import the row again")}
			}
			break
		}
		if round > 0 {
			if err := contended(ctx, round); err != nil {
				return nil, err
			}
		}
		next, err := l.importRound(ctx, tenant, rows, todo, out, sent)
		if err != nil {
			transit++
			if _, classified := apierr.As(err); classified || ctx.Err() != nil || transit >= importer.TransitAttempts {
				return nil, err
			}
			continue
		}
		if len(next) > 0 {
			lost++
		}
		todo = next
	}
	return out, nil
}

// leadMark is a lead exactly as one write makes it: a new lead's id is minted for the write, and
// an update's time tells it from a concurrent import's identical update of the same lead, so no
// two imports count the same write as theirs.
type leadMark struct {
	id, etag string
	updated  time.Time
}

func markOf(lead *Lead) leadMark {
	return leadMark{id: lead.GetId(), etag: lead.GetEtag(), updated: lead.GetUpdateTime().AsTime()}
}

// importRound plans and commits the rows todo, and returns those that lost a race. When the
// store fails once the writes are sent, it records them in sent and returns the error.
func (l *Leads) importRound(ctx context.Context, tenant string, rows []ImportedLead, todo []int, out []importer.Outcome, sent map[leadMark]importer.Result) ([]int, error) {
	emails := make([]string, len(todo))
	keys := make([]IdentityKey, len(todo))
	for j, i := range todo {
		emails[j] = rows[i].Lead.GetEmail()
		keys[j] = IdentityKey{Email: emails[j], ExternalID: rows[i].ExternalID}
	}
	ids, err := l.store.LeadIDsByEmail(ctx, tenant, emails)
	if err != nil {
		return nil, err
	}
	matches, err := l.store.MatchIdentities(ctx, tenant, keys)
	if err != nil {
		return nil, err
	}
	existing, err := l.store.GetLeads(ctx, tenant, slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" }))
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Lead, len(existing))
	for _, e := range existing {
		if e != nil {
			byID[e.GetId()] = e
		}
	}
	now := l.now().UTC()
	writes := make([]LeadWrite, 0, len(todo))
	at := make([]int, 0, len(todo))
	results := make([]importer.Result, 0, len(todo))
	for j, i := range todo {
		in := rows[i]
		if prev := byID[ids[j]]; prev != nil {
			next, changed := importedInto(prev, in.Lead, now)
			if !changed {
				out[i] = importer.Outcome{Result: importer.Skipped}
				if planned, ok := sent[markOf(prev)]; ok {
					out[i] = importer.Outcome{Result: planned} // this import's own write, from a round cut in transit
				}
				continue
			}
			_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLeadUpdated.Of(&marketingv1.LeadUpdated{
				LeadId: next.GetId(), CustomerId: next.GetCustomerId(), Fields: changedFields(prev, next)}), tenant, next.GetCustomerId(), now)
			if err != nil {
				return nil, err
			}
			writes, at, results = append(writes, LeadWrite{Lead: next, Prev: prev, Events: [][]byte{ev}}), append(at, i), append(results, importer.Updated)
			continue
		}
		m := matches[j]
		if m.ByEmail != "" && m.ByExternalID != "" && m.ByEmail != m.ByExternalID {
			out[i] = importer.Outcome{Err: importer.RowError("externalId", importer.ReasonConflict,
				"the e-mail and the external id belong to two customers; merge them first")}
			continue
		}
		w, err := l.importedLead(ctx, tenant, in, cmpOr(m.ByEmail, m.ByExternalID), now)
		if err != nil {
			return nil, err
		}
		writes, at, results = append(writes, w), append(at, i), append(results, importer.Created)
	}
	errs, err := l.store.ImportLeads(ctx, tenant, writes)
	if err != nil {
		return nil, sentAll(sent, writes, results, err)
	}
	var retry []int
	for j, werr := range errs {
		i := at[j]
		var taken *EmailTakenError
		var person *IdentityTakenError
		switch {
		case werr == nil:
			out[i] = importer.Outcome{Result: results[j]}
		case errors.Is(werr, ErrStale), errors.Is(werr, ErrPersonStale), errors.As(werr, &taken), errors.As(werr, &person):
			retry = append(retry, i) // a concurrent write came first: plan the row again
		default:
			e, ok := apierr.As(werr)
			if !ok {
				return nil, sentAll(sent, writes, results, werr) // the round is planned again: its applied writes too
			}
			out[i] = importer.Outcome{Err: importer.RowError("", importer.ReasonConflict, e.Message)}
		}
	}
	return retry, nil
}

// sentAll records writes, whose outcomes err leaves unknown, in sent, and returns err.
func sentAll(sent map[leadMark]importer.Result, writes []LeadWrite, results []importer.Result, err error) error {
	for j, w := range writes {
		sent[markOf(w.Lead)] = results[j]
	}
	return err
}

// importedLead plans a new lead; customer is the registry's customer for the person, "" for a new
// one.
func (l *Leads) importedLead(ctx context.Context, tenant string, in ImportedLead, customer string, now time.Time) (LeadWrite, error) {
	lead := newLead(in.Lead, in.Lead.GetEmail(), now)
	w := LeadWrite{Lead: lead}
	if customer != "" {
		lead.CustomerId, w.KnownCustomer = customer, true
	} else {
		w.Customer = NewCustomer(lead.GetCustomerId(), IdentityKey{Email: lead.GetEmail(), ExternalID: in.ExternalID},
			marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT, now)
	}
	eventID, ev, err := l.event(ctx, tenant, lead, true, true, false, now)
	if err != nil {
		return w, err
	}
	w.Events = [][]byte{ev}
	if w.Customer != nil {
		_, cev, err := customerEvent(ctx, l.publisher, marketingv1.EventCustomerCreated, tenant, w.Customer, now)
		if err != nil {
			return w, err
		}
		w.Events = append(w.Events, cev)
		// An imported person has not engaged yet: a SUSPECT (DESIGN §5).
		entry := LifecycleMove{Stage: originStage(w.Customer.GetOrigin()), Cause: marketingv1.EventCustomerCreated.Name, EventID: eventID}
		// No redelivery guard (a seen marker kept events.SeenTTL), as for a capture's entry (see
		// Leads.scored): the event is minted here, and a move whose cause is in the history is not
		// made again.
		if w.Lifecycle, err = enterStage(ctx, l.publisher, tenant, lead.GetCustomerId(), nil, entry, now); err != nil {
			return w, err
		}
	}
	return w, nil
}

// importedInto is prev with the row's non-empty names and company and its tags; changed is false
// when prev holds them all.
func importedInto(prev, in *Lead, now time.Time) (*Lead, bool) {
	next := proto.CloneOf(prev)
	for _, f := range []struct {
		dst *string
		src string
	}{{&next.GivenName, in.GetGivenName()}, {&next.FamilyName, in.GetFamilyName()}, {&next.Company, in.GetCompany()}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	next.Tags = mergeTags(next.Tags, in.GetTags())
	if proto.Equal(next, prev) {
		return prev, false
	}
	next.UpdateTime = timestamppb.New(now)
	next.Etag = etag.Next(prev.GetEtag())
	return next, true
}

// changedFields names the imported fields that differ.
func changedFields(prev, next *Lead) []string {
	var out []string
	if prev.GetGivenName() != next.GetGivenName() {
		out = append(out, "given_name")
	}
	if prev.GetFamilyName() != next.GetFamilyName() {
		out = append(out, "family_name")
	}
	if prev.GetCompany() != next.GetCompany() {
		out = append(out, "company")
	}
	if !slices.Equal(prev.GetTags(), next.GetTags()) {
		out = append(out, "tags")
	}
	return out
}

// protoJSONName is the column of a lead field path: given_name is givenName.
func protoJSONName(field string) string {
	name, _, _ := strings.Cut(field, "[")
	if fd := (&Lead{}).ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil {
		return fd.JSONName()
	}
	return name
}
