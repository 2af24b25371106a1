package marketing

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/protoupdate"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// ScoringRules are a tenant's lead-scoring rules.
type ScoringRules = marketingv1.ScoringRules

// ErrScoringRulesEtag means the rules changed since they were read.
var ErrScoringRulesEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
	"the scoring rules changed since they were read; read them again and retry")

// ErrScoringRulesContention means a rules update kept losing races to other updates.
var ErrScoringRulesContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
	"the scoring rules kept changing concurrently; retry")

// defaultRulesEtag is the etag of rules never set: an update sending it expects no stored rules.
const defaultRulesEtag = "0"

// ErrRulesChanged means a write checked the scoring rules it was scored with (LeadWrite.ScoredWith)
// and found others stored: score it again with the current rules.
var ErrRulesChanged = errors.New("marketing: the scoring rules changed since they were read")

// StoredRulesEtag is the version rules have in the store: "" for the defaults, which are never
// stored.
func StoredRulesEtag(r *ScoringRules) string {
	if r.GetEtag() == defaultRulesEtag {
		return ""
	}
	return r.GetEtag()
}

// updatableRuleFields are the fields UpdateScoringRules may change (its update_mask paths).
var updatableRuleFields = []string{"engagement_points", "half_life_days", "company_points", "consent_points", "channel_points", "mql_threshold"}

// DefaultScoringRules are a tenant's rules until it changes them: intent signals (forms, events,
// downloads) weigh most, a month's half-life, and fit alone never reaches the threshold.
func DefaultScoringRules() *ScoringRules {
	type et = marketingv1.EngagementType
	points := func(t et, n int32) *marketingv1.EngagementPoints {
		return &marketingv1.EngagementPoints{Type: t, Points: n}
	}
	return &ScoringRules{
		EngagementPoints: []*marketingv1.EngagementPoints{
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_EMAIL_OPEN, 1),
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_EMAIL_CLICK, 3),
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_PAGE_VIEW, 1),
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT, 10),
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_CONTENT_DOWNLOAD, 8),
			points(marketingv1.EngagementType_ENGAGEMENT_TYPE_EVENT_ATTENDED, 15),
		},
		HalfLifeDays:  30,
		CompanyPoints: 10,
		ConsentPoints: 5,
		ChannelPoints: []*marketingv1.ChannelPoints{
			{Channel: typev1.Channel_CHANNEL_REFERRAL, Points: 10},
			{Channel: typev1.Channel_CHANNEL_EVENT, Points: 5},
		},
		MqlThreshold: 50,
		Etag:         defaultRulesEtag,
	}
}

// pointsFor is what an engagement of type t earns under the rules.
func pointsFor(rules *ScoringRules, t marketingv1.EngagementType) int32 {
	for _, p := range rules.GetEngagementPoints() {
		if p.GetType() == t {
			return p.GetPoints()
		}
	}
	return 0
}

// decayed is what points are worth after age: half as much every half-life (exponential decay, so
// a running total decays as a whole and no engagement history is needed to rescore).
func decayed(points float64, age time.Duration, halfLifeDays int32) float64 {
	if halfLifeDays <= 0 || age <= 0 {
		return points
	}
	return points * math.Exp2(-age.Hours()/(24*float64(halfLifeDays)))
}

// fitPoints are the points a lead earns for who it is rather than what it did.
func fitPoints(lead *Lead, rules *ScoringRules) int32 {
	var fit int32
	if lead.GetCompany() != "" {
		fit += rules.GetCompanyPoints()
	}
	if slices.ContainsFunc(lead.GetConsent(), (*marketingv1.Consent).GetGranted) {
		fit += rules.GetConsentPoints()
	}
	for _, c := range rules.GetChannelPoints() {
		if c.GetChannel() == lead.GetChannel() {
			fit += c.GetPoints()
		}
	}
	return fit
}

// rescore brings a lead's score to now: its engagement points decay from score_time to now, added
// (points already decayed to now) joins them, and fit points are counted afresh.
func rescore(lead *Lead, rules *ScoringRules, now time.Time, added float64) {
	engagement := lead.GetEngagementPoints()
	if st := lead.GetScoreTime(); st != nil {
		engagement = decayed(engagement, now.Sub(st.AsTime()), rules.GetHalfLifeDays())
	}
	engagement += added
	lead.EngagementPoints = engagement
	lead.ScoreTime = timestamppb.New(now)
	lead.Score = int32(math.Min(math.Round(engagement), math.MaxInt32/2)) + fitPoints(lead, rules)
}

// reachesThreshold reports whether a lead that may still qualify automatically has reached the MQL
// threshold. Qualified, converted and disqualified leads never qualify again by score.
func reachesThreshold(lead *Lead, rules *ScoringRules) bool {
	s := lead.GetStatus()
	return (s == marketingv1.LeadStatus_LEAD_STATUS_NEW || s == marketingv1.LeadStatus_LEAD_STATUS_ENGAGED) &&
		lead.GetScore() >= rules.GetMqlThreshold()
}

// ScoringStore keeps a tenant's scoring rules.
type ScoringStore interface {
	// ScoringRules returns the tenant's rules; nil when it never set any.
	ScoringRules(ctx context.Context, tenant string) (*ScoringRules, error)
	// PutScoringRules stores rules if the stored ones are still at prevEtag ("" for none); ErrStale
	// otherwise.
	PutScoringRules(ctx context.Context, tenant string, rules *ScoringRules, prevEtag string, event []byte) error
}

// Scoring are the use cases of the scoring rules resource.
type Scoring struct {
	store     ScoringStore
	publisher events.Publisher
	validator protovalidate.Validator
	now       func() time.Time
}

// NewScoring returns the use cases over store.
func NewScoring(store ScoringStore, publisher events.Publisher, validator protovalidate.Validator, now func() time.Time) *Scoring {
	return &Scoring{store: store, publisher: publisher, validator: validator, now: now}
}

// Rules returns the tenant's rules, the defaults until it sets its own.
func (s *Scoring) Rules(ctx context.Context, tenant string) (*ScoringRules, error) {
	return rulesOrDefaults(ctx, s.store, tenant)
}

// rulesReader reads a tenant's stored rules (nil when none).
type rulesReader interface {
	ScoringRules(ctx context.Context, tenant string) (*ScoringRules, error)
}

func rulesOrDefaults(ctx context.Context, store rulesReader, tenant string) (*ScoringRules, error) {
	rules, err := store.ScoringRules(ctx, tenant)
	if err != nil || rules != nil {
		return rules, err
	}
	return DefaultScoringRules(), nil
}

// Update changes the fields named by mask (when it is empty, the fields `in` sets). An etag that
// is not the current one is ABORTED; the merged rules are validated as a whole.
func (s *Scoring) Update(ctx context.Context, tenant string, in *ScoringRules, mask *fieldmaskpb.FieldMask) (*ScoringRules, error) {
	if in == nil {
		return nil, apierr.Invalid("scoring_rules", "required")
	}
	update, err := protoupdate.Fields(in, mask, updatableRuleFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrScoringRulesContention, func() (*ScoringRules, error) {
		existing, err := s.Rules(ctx, tenant)
		if err != nil {
			return nil, err
		}
		merged, err := protoupdate.Merge(s.validator, "scoring_rules", existing, in, update, ErrScoringRulesEtag)
		if err != nil {
			return nil, err
		}
		if len(update.Fields) == 0 { // nothing to change: no write, no new etag
			return existing, nil
		}
		if err := distinctRuleKeys(merged); err != nil {
			return nil, err
		}
		now := s.now().UTC()
		merged.UpdateTime = timestamppb.New(now)
		merged.Etag = etag.Next(existing.GetEtag())
		_, event, err := s.publisher.Envelope(ctx, marketingv1.EventScoringRulesUpdated.Of(merged), tenant, "", now)
		if err != nil {
			return nil, err
		}
		if err := s.store.PutScoringRules(ctx, tenant, merged, StoredRulesEtag(existing), event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}

// distinctRuleKeys refuses rules that give one engagement type or channel points twice.
func distinctRuleKeys(r *ScoringRules) error {
	seenTypes := map[marketingv1.EngagementType]bool{}
	for _, p := range r.GetEngagementPoints() {
		if seenTypes[p.GetType()] {
			return apierr.Invalid("scoring_rules.engagement_points", "lists "+p.GetType().String()+" twice")
		}
		seenTypes[p.GetType()] = true
	}
	seenChannels := map[typev1.Channel]bool{}
	for _, p := range r.GetChannelPoints() {
		if seenChannels[p.GetChannel()] {
			return apierr.Invalid("scoring_rules.channel_points", "lists "+p.GetChannel().String()+" twice")
		}
		seenChannels[p.GetChannel()] = true
	}
	return nil
}
