package marketing

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/protoupdate"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of changing and erasing leads.
var (
	ErrLeadEtag        = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the lead changed since it was read; read it again and retry")
	ErrLeadEmailExists = apierr.New(apierr.AlreadyExists, "LEAD_EMAIL_EXISTS", "another lead has this e-mail")
	// ErrEmailOfAnotherCustomer refuses an e-mail edit that would give one person's e-mail to
	// another customer's record; its customer_id names the e-mail's customer.
	ErrEmailOfAnotherCustomer = apierr.New(apierr.AlreadyExists, "CUSTOMER_EMAIL_EXISTS",
		"the e-mail belongs to another customer in the identity registry; if they are one person, merge the two customers")
)

// updatableLeadFields are the fields UpdateLead may change (its update_mask paths).
var updatableLeadFields = []string{"email", "given_name", "family_name", "company", "consent", "tags"}

// Update changes the fields named by mask (when it is empty, the fields `in` sets).
func (l *Leads) Update(ctx context.Context, tenant string, in *Lead, mask *fieldmaskpb.FieldMask) (*Lead, error) {
	if in == nil {
		return nil, apierr.Invalid("lead", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("lead.id", "must be a lead id (UUID)")
	}
	update, err := protoupdate.Fields(in, mask, updatableLeadFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrContention, func() (*Lead, error) { return l.update(ctx, tenant, in, update) })
}

// update is one try of Update: ErrStale when the lead changed after it was read (a reaction
// rescoring it, another update), for Update to redo the whole read and merge.
func (l *Leads) update(ctx context.Context, tenant string, in *Lead,
	update protoupdate.Update) (*Lead, error) {
	existing, err := l.store.GetLead(ctx, tenant, in.GetId())
	if err != nil {
		return nil, err
	}
	if err := etag.Check(in.GetEtag(), existing.GetEtag(), ErrLeadEtag); err != nil {
		return nil, err
	}
	if len(update.Fields) == 0 { // nothing to change: no write, no new etag
		if err := update.Unchanged(existing, in); err != nil {
			return nil, err
		}
		return existing, nil
	}
	now := l.now().UTC()
	merged := proto.CloneOf(existing)
	if err := protoupdate.Apply(merged, in, update); err != nil {
		return nil, err
	}
	if merged.Email, err = NormalizeEmail(merged.GetEmail()); err != nil {
		return nil, err
	}
	ts := timestamppb.New(now)
	merged.Consent = keepConsentTimes(existing.GetConsent(), merged.GetConsent(), ts)
	if err := protoupdate.Validate(l.validator, "lead", merged); err != nil {
		return nil, err
	}
	rules, err := rulesOrDefaults(ctx, l.store, tenant)
	if err != nil {
		return nil, err
	}
	rescore(merged, rules, now, 0)
	touch(merged, existing, now)
	changed := make([]string, len(update.Fields))
	for i, fd := range update.Fields {
		changed[i] = string(fd.Name())
	}
	_, event, err := l.publisher.Envelope(ctx, marketingv1.EventLeadUpdated.Of(
		&marketingv1.LeadUpdated{LeadId: merged.GetId(), CustomerId: merged.GetCustomerId(), Fields: changed}), tenant, merged.GetCustomerId(), now)
	if err != nil {
		return nil, err
	}
	w := LeadWrite{Lead: merged, Prev: existing, Events: [][]byte{event}}
	// New profile data or consent can be what brings the score to the threshold.
	if err := l.qualifyIfDue(ctx, tenant, &w, rules, now); err != nil {
		return nil, err
	}
	for range captureAttempts {
		if merged.GetEmail() != existing.GetEmail() {
			if w.Person, err = l.claimEmail(ctx, tenant, merged, now); err != nil {
				return nil, err
			}
		}
		err = l.store.UpdateLead(ctx, tenant, w)
		if errors.Is(err, ErrPersonStale) {
			continue // the customer changed (another of their records, a resolve): read them again
		}
		if taken, ok := errors.AsType[*IdentityTakenError](err); ok {
			return nil, ErrEmailOfAnotherCustomer.With("customer_id", taken.Owner)
		}
		if err != nil {
			return nil, err
		}
		return merged, nil
	}
	return nil, ErrIdentityContention
}

// claimEmail is the registry's half of a lead's e-mail edit: the new e-mail joins the lead's
// customer, committed with the lead, so the registry never lags the lead and one person stays
// one customer (a contact or a capture with the new e-mail finds them). The old e-mail stays
// theirs, as a merged customer keeps all their e-mails: a record elsewhere (a contact, an
// import) may still carry it, and a capture with it still finds the same person.
func (l *Leads) claimEmail(ctx context.Context, tenant string, lead *Lead, now time.Time) (*CustomerWrite, error) {
	cur, err := l.store.GetCustomer(ctx, tenant, lead.GetCustomerId())
	if err != nil {
		return nil, err
	}
	if cur.GetMergedInto() != "" {
		// The merge's reaction is about to move the lead to the survivor: the edit waits for it.
		return nil, ErrContention
	}
	next, changed := withKeys(cur, IdentityKey{Email: lead.GetEmail()}, now)
	if !changed {
		return nil, nil // theirs already (a merge, an earlier edit)
	}
	_, ev, err := customerEvent(ctx, l.publisher, marketingv1.EventCustomerUpdated, tenant, next, now)
	if err != nil {
		return nil, err
	}
	return &CustomerWrite{Customer: next, Prev: cur, Events: [][]byte{ev}}, nil
}

// Erase removes a lead's personal data for good (the right to be forgotten): the person goes with
// the lead, so every lead of theirs goes too, their identity leaves the registry, and the other
// services drop what they hold about the customer on "marketing.customer.erased". Counters that
// counted the leads keep counting them; the erased events carry only ids.
func (l *Leads) Erase(ctx context.Context, tenant, id, ifMatch string) error {
	_, err := etag.Retry(ErrStale, ErrContention, func() (struct{}, error) { return struct{}{}, l.erase(ctx, tenant, id, ifMatch) })
	return err
}

// erase is one try of Erase: ErrStale when a lead or a customer changed after they were read.
func (l *Leads) erase(ctx context.Context, tenant, id, ifMatch string) error {
	existing, err := l.store.GetLead(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := etag.Check(ifMatch, existing.GetEtag(), ErrLeadEtag); err != nil {
		return err
	}
	e, err := l.erasure(ctx, tenant, existing.GetCustomerId(), existing)
	if err != nil {
		return err
	}
	return l.commitErasure(ctx, tenant, e)
}

// EraseCustomer erases a customer as Erase erases their lead's person, whether they have leads
// or not (a person known only as a sales contact, a resolution or an import): a merged customer
// names the survivor. It returns what it erased; ErrCustomerNotFound when the registry has nobody
// (never known, or erased already), so a second erasure changes nothing.
func (l *Leads) EraseCustomer(ctx context.Context, tenant, customer string) (*Erasure, error) {
	return etag.Retry(ErrStale, ErrContention, func() (*Erasure, error) {
		e, err := l.erasure(ctx, tenant, customer, nil)
		if err != nil {
			return nil, err
		}
		if e.Person == nil && len(e.Merged) == 0 {
			return nil, ErrCustomerNotFound
		}
		return e, l.commitErasure(ctx, tenant, e)
	})
}

// commitErasure commits e and drops the erased leads from the recently touched ones.
func (l *Leads) commitErasure(ctx context.Context, tenant string, e *Erasure) error {
	if err := l.store.ErasePerson(ctx, tenant, *e); err != nil {
		return err
	}
	for _, lead := range e.Leads {
		l.recent.forget(tenant, lead.GetEmail())
	}
	return nil
}

// erasure plans the erasure of the person customer names (itself, or the survivor it was merged
// into) with all their leads, lead (when set) among them. The registry keeps every e-mail of the
// person (an edited lead's old and new ones, a merged customer's), and each e-mail has at most one
// lead, so their e-mails find their leads; one found there is theirs when it names them or a
// customer merged into them (whose lead the merge's reaction has not moved yet).
func (l *Leads) erasure(ctx context.Context, tenant, customer string, lead *Lead) (*Erasure, error) {
	person, merged, err := l.personOf(ctx, tenant, customer)
	if err != nil {
		return nil, err
	}
	e := &Erasure{Person: person, Merged: merged}
	if lead != nil {
		e.Leads = []*Lead{lead}
	}
	if person != nil {
		// The customers merged into the person go too, whether or not a lead names them.
		mergedIDs, err := l.store.MergedInto(ctx, tenant, person.GetId())
		if err != nil {
			return nil, err
		}
		for _, id := range mergedIDs {
			if e.hasMerged(id) {
				continue
			}
			c, err := l.store.GetCustomer(ctx, tenant, id)
			if errors.Is(err, ErrCustomerNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			e.Merged = append(e.Merged, c)
		}
		emails := person.GetEmails()
		ids, err := l.store.LeadIDsByEmail(ctx, tenant, emails)
		if err != nil {
			return nil, err
		}
		var others []string
		for i, id := range ids {
			switch {
			case id == "":
				e.FreeEmails = append(e.FreeEmails, emails[i])
			case id != lead.GetId() && !slices.Contains(others, id):
				others = append(others, id)
			}
		}
		found, err := l.store.GetLeads(ctx, tenant, others)
		if err != nil {
			return nil, err
		}
		for _, other := range found {
			if other == nil {
				continue // erased since the index named it
			}
			if other.GetCustomerId() == person.GetId() {
				e.Leads = append(e.Leads, other)
				continue
			}
			of, chain, err := l.personOf(ctx, tenant, other.GetCustomerId())
			if err != nil {
				return nil, err
			}
			if of.GetId() != person.GetId() {
				continue // another person's lead: the registry and the leads disagree, leave it
			}
			e.Leads = append(e.Leads, other)
			for _, c := range chain {
				if !e.hasMerged(c.GetId()) {
					e.Merged = append(e.Merged, c)
				}
			}
		}
	}
	now := l.now()
	for _, erased := range e.Leads {
		_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLeadErased.Of(
			&marketingv1.LeadErased{LeadId: erased.GetId(), CustomerId: erased.GetCustomerId()}), tenant, erased.GetCustomerId(), now)
		if err != nil {
			return nil, err
		}
		e.Events = append(e.Events, ev)
	}
	for _, c := range append([]*Customer{person}, e.Merged...) {
		if c == nil {
			continue
		}
		_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventCustomerErased.Of(
			&marketingv1.CustomerErased{CustomerId: c.GetId()}), tenant, c.GetId(), now)
		if err != nil {
			return nil, err
		}
		e.Events = append(e.Events, ev)
	}
	return e, nil
}

// hasMerged reports whether the erasure already takes the merged customer id.
func (e *Erasure) hasMerged(id string) bool {
	return slices.ContainsFunc(e.Merged, func(m *Customer) bool { return m.GetId() == id })
}

// personOf is the person a customer id names: its identity, or the survivor's it was merged into,
// with the merged customers passed on the way; nil when the registry has nobody (erased).
func (l *Leads) personOf(ctx context.Context, tenant, customer string) (*Customer, []*Customer, error) {
	var merged []*Customer
	for range captureAttempts {
		c, err := l.store.GetCustomer(ctx, tenant, customer)
		if errors.Is(err, ErrCustomerNotFound) {
			return nil, merged, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if c.GetMergedInto() == "" {
			return c, merged, nil
		}
		merged, customer = append(merged, c), c.GetMergedInto()
	}
	return nil, nil, ErrContention
}

// keepConsentTimes stamps consent entries that changed with ts and keeps the time of the others.
func keepConsentTimes(before, after []*marketingv1.Consent, ts *timestamppb.Timestamp) []*marketingv1.Consent {
	out := make([]*marketingv1.Consent, 0, len(after))
	for _, c := range after {
		c = proto.CloneOf(c)
		if c.GetSource() == "" {
			c.Source = "update"
		}
		i := slices.IndexFunc(before, func(b *marketingv1.Consent) bool {
			return b.GetChannel() == c.GetChannel() && b.GetGranted() == c.GetGranted() && b.GetSource() == c.GetSource()
		})
		if i >= 0 {
			c.UpdateTime = before[i].GetUpdateTime()
		} else {
			c.UpdateTime = ts
		}
		out = append(out, c)
	}
	return out
}
