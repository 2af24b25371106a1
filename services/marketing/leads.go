package marketing

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// captureAttempts bounds optimistic retries when concurrent captures race on one e-mail. Each
// round one of the racing captures wins, so the bound is above any plausible number of captures
// of one person at the same moment; a jittered pause between rounds spreads the losers out.
const captureAttempts = 64

// contended waits a jittered moment, growing with the attempt (up to ~10 ms), before a capture
// that lost a race tries again.
func contended(ctx context.Context, attempt int) error {
	t := time.NewTimer(rand.N(time.Duration(min(attempt, 20)) * 500 * time.Microsecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Leads are the lead use cases.
type Leads struct {
	store     Store
	publisher events.Publisher
	validator protovalidate.Validator
	now       func() time.Time
	// rules are the scoring rules Capture last read, by tenant. A capture scores with them and its
	// write checks that they are still the stored ones (LeadWrite.ScoredWith), so the rules cost no
	// round trip of their own, and a change made by any process is seen by the next write.
	rules sync.Map
	// recent are the leads Capture touched lately: a returning person is touched in one round trip.
	recent recentLeads
}

// NewLeads returns the use cases over store.
func NewLeads(store Store, publisher events.Publisher, validator protovalidate.Validator, now func() time.Time) *Leads {
	return &Leads{store: store, publisher: publisher, validator: validator, now: now}
}

// Capture is an upsert on the normalized e-mail: a new e-mail creates a lead with a new customer
// id; a known one records a touch on the existing lead. Concurrent captures of one e-mail produce
// one lead: the store's unique index decides, and losers retry as touches.
func (l *Leads) Capture(ctx context.Context, tenant string, in *Lead) (*Lead, error) {
	email, err := NormalizeEmail(in.GetEmail())
	if err != nil {
		return nil, err
	}
	referrer := ""
	if in.GetReferralCode() != "" {
		// Codes are issued in upper case; one typed or pasted in lower case is the same code.
		in.ReferralCode = strings.ToUpper(in.GetReferralCode())
		if referrer, err = l.store.ReferrerOf(ctx, tenant, in.GetReferralCode()); err != nil {
			return nil, err
		}
	}
	rules, err := l.captureRules(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	known := "" // the customer the registry already has for the e-mail, if any
	// existing is the lead the touch is written against: one this process touched lately, or the
	// one a refused create read.
	existing, pause := l.recent.get(tenant, email), false
	fromRecent := existing != nil
	for attempt := range captureAttempts {
		if pause {
			if err := contended(ctx, attempt); err != nil {
				return nil, err
			}
		}
		pause = true // after a lost race, unless said otherwise below
		now := l.now().UTC()
		if existing == nil {
			w, err := l.createWrite(ctx, tenant, in, email, referrer, known, rules, now)
			if err != nil {
				return nil, err
			}
			err = l.store.CreateLead(ctx, tenant, w)
			if errors.Is(err, ErrRulesChanged) {
				if rules, err = l.captureRules(ctx, tenant, true); err != nil {
					return nil, err
				}
				continue
			}
			if person, ok := errors.AsType[*IdentityTakenError](err); ok {
				known = person.Owner // a contact or an import registered the person first
				pause = attempt > 0
				continue
			}
			if errors.Is(err, ErrPersonStale) {
				known = "" // erased or merged since: ask the registry again
				continue
			}
			var taken *EmailTakenError
			if !errors.As(err, &taken) {
				if err != nil {
					return nil, err
				}
				return w.Lead, nil
			}
			// The refused create read the lead that has the e-mail: a person this process has not
			// touched lately costs the create and the touch, two round trips.
			if existing = taken.Lead; existing == nil {
				continue // deleted since its claim was refused: create again
			}
		}
		touched, err := l.recordTouch(ctx, tenant, existing, in, referrer, rules, now)
		if fromRecent && err != nil {
			l.recent.forget(tenant, email) // another write moved it on: find it the usual way at once
			pause = false
		}
		existing, fromRecent = nil, false
		if errors.Is(err, ErrRulesChanged) {
			if rules, err = l.captureRules(ctx, tenant, true); err != nil {
				return nil, err
			}
			continue
		}
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		l.recent.put(tenant, email, touched)
		return touched, nil
	}
	return nil, ErrContention
}

// recordTouch records a capture's touch on existing, in one write conditional on its version.
func (l *Leads) recordTouch(ctx context.Context, tenant string, existing, in *Lead, referrer string, rules *ScoringRules, now time.Time) (*Lead, error) {
	touched := addTouch(existing, in, referrer, now)
	w := LeadWrite{Lead: touched, Prev: existing, Campaign: touched.GetLastTouch().GetCampaignId(), Touch: true, ScoredWith: rules}
	if err := l.scored(ctx, tenant, &w, rules, false, now); err != nil {
		return nil, err
	}
	return touched, l.store.UpdateLead(ctx, tenant, w)
}

// createWrite is a capture's write of a new lead for email, with a new customer unless known
// names the one the registry has.
func (l *Leads) createWrite(ctx context.Context, tenant string, in *Lead, email, referrer, known string, rules *ScoringRules, now time.Time) (LeadWrite, error) {
	lead := newLead(in, email, now)
	lead.ReferrerCustomerId = referrer
	if referrer != "" && referrer == known {
		// A customer's own code refers nobody, as on a touch (addTouch).
		lead.ReferralCode, lead.ReferrerCustomerId = "", ""
	}
	w := LeadWrite{Lead: lead, Campaign: lead.GetCampaignId(), Touch: true, ScoredWith: rules}
	if known != "" {
		lead.CustomerId, w.KnownCustomer = known, true
	} else {
		w.Customer = NewCustomer(lead.GetCustomerId(), IdentityKey{Email: email}, marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CAPTURE, now)
	}
	return w, l.scored(ctx, tenant, &w, rules, true, now)
}

// captureRules are the tenant's scoring rules as last read, or read now when there are none yet or
// reread is set (a write found them changed).
func (l *Leads) captureRules(ctx context.Context, tenant string, reread bool) (*ScoringRules, error) {
	if cached, ok := l.rules.Load(tenant); ok && !reread {
		return cached.(*ScoringRules), nil
	}
	rules, err := rulesOrDefaults(ctx, l.store, tenant)
	if err != nil {
		return nil, err
	}
	l.rules.Store(tenant, rules)
	return rules, nil
}

// scored rescores a captured lead (its profile and consent are fit points), qualifies it if that
// reaches the threshold, and puts the captured event first in the write.
func (l *Leads) scored(ctx context.Context, tenant string, w *LeadWrite, rules *ScoringRules, created bool, now time.Time) error {
	rescore(w.Lead, rules, now, 0)
	if err := l.qualifyIfDue(ctx, tenant, w, rules, now); err != nil {
		return err
	}
	eventID, event, err := l.event(ctx, tenant, w.Lead, created, false, w.Customer != nil, now)
	if err != nil {
		return err
	}
	w.Events = append([][]byte{event}, w.Events...)
	if w.Customer != nil {
		_, ev, err := customerEvent(ctx, l.publisher, marketingv1.EventCustomerCreated, tenant, w.Customer, now)
		if err != nil {
			return err
		}
		w.Events = append(w.Events, ev)
	}
	if w.Customer != nil {
		// A new person enters the lifecycle as a PROSPECT in the same commit; a person the registry
		// knew already has a lifecycle, which the capture engages (see Lifecycle.Engage). The
		// entry needs no redelivery guard (a seen marker kept 8 days): its event is minted here,
		// so nothing applied it before, and a later change caused by it finds it in the history
		// (Lifecycle.change), as a registration's entry does.
		entry := LifecycleMove{Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT, Cause: marketingv1.EventLeadCaptured.Name, EventID: eventID}
		if w.Lifecycle, err = enterStage(ctx, l.publisher, tenant, w.Lead.GetCustomerId(), nil, entry, now); err != nil {
			return err
		}
	}
	return nil
}

// Get returns one lead.
func (l *Leads) Get(ctx context.Context, tenant, id string) (*Lead, error) {
	return l.store.GetLead(ctx, tenant, id)
}

// GetMany returns leads by id, in order: all, or ErrLeadNotFound naming the missing.
func (l *Leads) GetMany(ctx context.Context, tenant string, ids []string) ([]*Lead, error) {
	found, err := l.store.GetLeads(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	return batch.All(found, ids, ErrLeadNotFound)
}

// List returns a page of leads, newest first.
func (l *Leads) List(ctx context.Context, tenant string, q LeadQuery) (page.Page[*Lead], error) {
	return l.store.ListLeads(ctx, tenant, q)
}

// event is the lead's marketing.lead.captured; imported marks a lead brought in by an import,
// registered a capture that registered the person (a PROSPECT in the same commit).
func (l *Leads) event(ctx context.Context, tenant string, lead *Lead, created, imported, registered bool, at time.Time) (string, []byte, error) {
	ev, data, err := l.publisher.Envelope(ctx, marketingv1.EventLeadCaptured.Of(&marketingv1.LeadCaptured{
		LeadId: lead.GetId(), Created: created, CustomerId: lead.GetCustomerId(), Touch: lead.GetLastTouch(),
		SourceChannel: lead.GetChannel(), SourceCampaignId: lead.GetCampaignId(),
		ReferralCode: lead.GetReferralCode(), Status: lead.GetStatus(), Imported: imported, Registered: registered,
	}), tenant, lead.GetCustomerId(), at)
	return ev.GetId(), data, err
}

func newLead(in *Lead, email string, now time.Time) *Lead {
	ts := timestamppb.New(now)
	touch := &marketingv1.Touch{Channel: in.GetChannel(), CampaignId: in.GetCampaignId(), Time: ts}
	return &Lead{
		Id:           uuid.Must(uuid.NewV7()).String(),
		CustomerId:   uuid.Must(uuid.NewV7()).String(),
		Email:        email,
		GivenName:    in.GetGivenName(),
		FamilyName:   in.GetFamilyName(),
		Company:      in.GetCompany(),
		Channel:      in.GetChannel(),
		CampaignId:   in.GetCampaignId(),
		Consent:      mergeConsent(nil, in.GetConsent(), ts),
		ReferralCode: in.GetReferralCode(),
		Status:       marketingv1.LeadStatus_LEAD_STATUS_NEW,
		StatusTime:   ts,
		Tags:         mergeTags(nil, in.GetTags()),
		FirstTouch:   touch,
		LastTouch:    touch,
		TouchCount:   1,
		CreateTime:   ts,
		UpdateTime:   ts,
		Etag:         etag.First,
	}
}

// addTouch records a new capture of a known lead: the latest non-empty profile data wins, consent
// is merged per channel, tags are added, and the source (first touch, referral code) is kept.
func addTouch(existing, in *Lead, referrer string, now time.Time) *Lead {
	lead := proto.CloneOf(existing)
	ts := timestamppb.New(now)
	for _, f := range []struct {
		dst *string
		src string
	}{{&lead.GivenName, in.GetGivenName()}, {&lead.FamilyName, in.GetFamilyName()}, {&lead.Company, in.GetCompany()}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	// The first referral sticks; a customer's own code refers nobody.
	if lead.ReferralCode == "" && referrer != "" && referrer != existing.GetCustomerId() {
		lead.ReferralCode, lead.ReferrerCustomerId = in.GetReferralCode(), referrer
	}
	lead.Consent = mergeConsent(lead.Consent, in.GetConsent(), ts)
	lead.Tags = mergeTags(lead.Tags, in.GetTags())
	lead.LastTouch = &marketingv1.Touch{Channel: in.GetChannel(), CampaignId: in.GetCampaignId(), Time: ts}
	lead.TouchCount++
	lead.UpdateTime = ts
	lead.Etag = etag.Next(existing.GetEtag())
	return lead
}

func mergeConsent(have, grants []*marketingv1.Consent, ts *timestamppb.Timestamp) []*marketingv1.Consent {
	out := slices.Clone(have)
	for _, g := range grants {
		c := &marketingv1.Consent{Channel: g.GetChannel(), Granted: g.GetGranted(), Source: g.GetSource(), UpdateTime: ts}
		if c.Source == "" {
			c.Source = "capture"
		}
		i := slices.IndexFunc(out, func(x *marketingv1.Consent) bool { return x.GetChannel() == c.Channel })
		if i >= 0 {
			out[i] = c
		} else {
			out = append(out, c)
		}
	}
	return out
}

func mergeTags(have, add []string) []string {
	out := slices.Clone(have)
	for _, t := range add {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
