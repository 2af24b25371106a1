package marketing

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Segment is the stored and served form of a segment.
type Segment = marketingv1.Segment

// Errors of segments.
var (
	ErrSegmentNotFound = apierr.New(apierr.NotFound, "SEGMENT_NOT_FOUND", "segment not found")
	ErrSegmentEtag     = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the segment changed since it was read; read it again and retry")
	ErrSegmentScore  = apierr.Invalid("segment.rule.max_score", "must not be below min_score")
	ErrSegmentOrders = apierr.Invalid("segment.rule.max_orders", "must not be below min_orders")
	ErrSegmentLTV    = apierr.Invalid("segment.rule.max_lifetime_value", "must be in the currency of min_lifetime_value and not below it")
)

// Driver names the index a member list walks: all leads, leads with a tag, a source channel or a
// consent (members are lead ids), or customers in a stage or at risk (members are customer ids).
type Driver struct {
	Kind  DriverKind
	Value string
}

// DriverKind is the kind of index a Driver walks.
type DriverKind string

// The index kinds.
const (
	DriveAll     DriverKind = "all"
	DriveTag     DriverKind = "tag"
	DriveChannel DriverKind = "channel"
	DriveConsent DriverKind = "consent"
	DriveStage   DriverKind = "stage"
	DriveAtRisk  DriverKind = "at-risk"
	DriveBuyers  DriverKind = "buyers"
)

// ByCustomer reports whether the driver's members are customer ids rather than lead ids.
func (d Driver) ByCustomer() bool {
	return d.Kind == DriveStage || d.Kind == DriveAtRisk || d.Kind == DriveBuyers
}

// CustomerFacts are what a segment rule asks about a lead's customer. Value is what sales says the
// customer is worth (nil before their first order), evaluated with Ranks before a rule reads it.
type CustomerFacts struct {
	Stage  Stage
	AtRisk bool
	Tier   marketingv1.LoyaltyTier
	Value  *salesv1.CustomerValue
	Ranks  salesv1.ValueRanks
}

// Candidate is one examined index member: its lead (nil when gone) and its customer's facts.
type Candidate struct {
	Member string
	Lead   *Lead
	Facts  CustomerFacts
}

// SegmentStore keeps segments and answers the index walks of member lists.
type SegmentStore interface {
	CreateSegment(ctx context.Context, tenant string, s *Segment, event []byte) error
	GetSegment(ctx context.Context, tenant, id string) (*Segment, error)
	// GetSegments reads segments by id in one round trip; nil where there is none.
	GetSegments(ctx context.Context, tenant string, ids []string) ([]*Segment, error)
	ListSegments(ctx context.Context, tenant string, p page.Request) (page.Page[*Segment], error)
	// DeleteSegment removes seg as read: ErrStale if it is no longer at seg's etag (gone or changed).
	DeleteSegment(ctx context.Context, tenant string, seg *Segment, event []byte) error
	// IndexSizes returns how many members each driver's index has.
	IndexSizes(ctx context.Context, tenant string, drivers []Driver) ([]int64, error)
	// Candidates returns up to limit members of a driver's index after the member after, highest
	// first, each with its lead and (when withFacts) its customer's facts.
	Candidates(ctx context.Context, tenant string, d Driver, after string, limit int, withFacts bool) ([]Candidate, error)
}

// Segments are the segment use cases.
type Segments struct {
	store     SegmentStore
	publisher events.Publisher
	now       func() time.Time
}

// NewSegments returns the use cases over store.
func NewSegments(store SegmentStore, publisher events.Publisher, now func() time.Time) *Segments {
	return &Segments{store: store, publisher: publisher, now: now}
}

// Create stores a new segment.
func (s *Segments) Create(ctx context.Context, tenant string, in *Segment) (*Segment, error) {
	r := in.GetRule()
	if r.MinScore != nil && r.MaxScore != nil && r.GetMaxScore() < r.GetMinScore() {
		return nil, ErrSegmentScore
	}
	if r.MinOrders != nil && r.MaxOrders != nil && r.GetMaxOrders() < r.GetMinOrders() {
		return nil, ErrSegmentOrders
	}
	// A lifetime value is never below zero: a negative bound is a mistake, not a filter.
	if money.Sign(r.GetMinLifetimeValue()) < 0 {
		return nil, apierr.Invalid("segment.rule.min_lifetime_value", "must not be negative")
	}
	if money.Sign(r.GetMaxLifetimeValue()) < 0 {
		return nil, apierr.Invalid("segment.rule.max_lifetime_value", "must not be negative")
	}
	if lo, hi := r.GetMinLifetimeValue(), r.GetMaxLifetimeValue(); lo != nil && hi != nil {
		if c, err := money.Compare(lo, hi); err != nil || c > 0 {
			return nil, ErrSegmentLTV
		}
	}
	now := s.now().UTC()
	seg := &Segment{Id: uuid.Must(uuid.NewV7()).String(), DisplayName: in.GetDisplayName(), ContactChannel: in.GetContactChannel(),
		Rule: r, CreateTime: timestamppb.New(now), Etag: etag.First}
	_, ev, err := s.publisher.Envelope(ctx, marketingv1.EventSegmentCreated.Of(seg), tenant, "", now)
	if err != nil {
		return nil, err
	}
	return seg, s.store.CreateSegment(ctx, tenant, seg, ev)
}

// Get returns a segment.
func (s *Segments) Get(ctx context.Context, tenant, id string) (*Segment, error) {
	return s.store.GetSegment(ctx, tenant, id)
}

// GetMany returns segments by id, in order: all, or ErrSegmentNotFound naming the missing.
func (s *Segments) GetMany(ctx context.Context, tenant string, ids []string) ([]*Segment, error) {
	found, err := s.store.GetSegments(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	return batch.All(found, ids, ErrSegmentNotFound)
}

// List returns a page of segments, newest first.
func (s *Segments) List(ctx context.Context, tenant string, p page.Request) (page.Page[*Segment], error) {
	return s.store.ListSegments(ctx, tenant, p)
}

// Delete removes a segment. A set ifMatch must be the etag of the segment the delete removes
// (ErrSegmentEtag otherwise); a delete that loses a race reads again and checks it again.
func (s *Segments) Delete(ctx context.Context, tenant, id, ifMatch string) error {
	for range moveAttempts {
		seg, err := s.store.GetSegment(ctx, tenant, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, seg.GetEtag(), ErrSegmentEtag); err != nil {
			return err
		}
		deleted := marketingv1.EventSegmentDeleted.Of(&marketingv1.Segment{Id: id})
		_, ev, err := s.publisher.Envelope(ctx, deleted, tenant, "", s.now())
		if err != nil {
			return err
		}
		err = s.store.DeleteSegment(ctx, tenant, seg, ev)
		if errors.Is(err, ErrStale) {
			continue
		}
		return err
	}
	return ErrSegmentEtag // it kept changing under the delete (a segment only changes by going)
}

// Bounds of one member-list call: candidates are read in batches, and no more than maxExamined
// are looked at, so a call costs O(page + bound) whatever the size of the tenant.
const (
	candidateBatch = 256
	maxExamined    = 4096
)

// MemberCursor is where a member list stands: the driving index, chosen on the first page and kept
// (index sizes change between pages), and the last member examined.
type MemberCursor struct {
	Driver Driver
	After  string
}

// Members returns up to limit leads of a segment after cursor (nil for the first page), and the
// cursor of the next page (nil when every candidate was examined).
func (s *Segments) Members(ctx context.Context, tenant, id string, cursor *MemberCursor, limit int) ([]*Lead, *MemberCursor, error) {
	seg, err := s.store.GetSegment(ctx, tenant, id)
	if err != nil {
		return nil, nil, err
	}
	if cursor == nil {
		d, err := s.mostSelective(ctx, tenant, seg)
		if err != nil {
			return nil, nil, err
		}
		cursor = &MemberCursor{Driver: d}
	}
	r := seg.GetRule()
	withFacts := len(r.GetLifecycleStages()) > 0 || len(r.GetLoyaltyTiers()) > 0 || r.AtRisk != nil || valueRule(r)
	now := s.now()
	var out []*Lead
	after := cursor.After
	for examined := 0; examined < maxExamined; {
		want := min(candidateBatch, maxExamined-examined)
		batch, err := s.store.Candidates(ctx, tenant, cursor.Driver, after, want, withFacts)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range batch {
			examined++
			after = c.Member
			if c.Facts.Value != nil {
				c.Facts.Value = salesv1.EvaluateValue(c.Facts.Value, c.Facts.Ranks, now)
			}
			if c.Lead != nil && Matches(seg, c.Lead, c.Facts, now) {
				out = append(out, c.Lead)
				if len(out) == limit {
					return out, &MemberCursor{Driver: cursor.Driver, After: after}, nil
				}
			}
		}
		if len(batch) < want {
			return out, nil, nil // the index is exhausted
		}
	}
	return out, &MemberCursor{Driver: cursor.Driver, After: after}, nil
}

// mostSelective picks, among the indexes the rule allows walking, the one with the fewest members.
func (s *Segments) mostSelective(ctx context.Context, tenant string, seg *Segment) (Driver, error) {
	r := seg.GetRule()
	drivers := []Driver{{Kind: DriveAll}}
	for _, t := range r.GetTags() {
		drivers = append(drivers, Driver{Kind: DriveTag, Value: t})
	}
	if len(r.GetSourceChannels()) == 1 {
		drivers = append(drivers, Driver{Kind: DriveChannel, Value: r.GetSourceChannels()[0].String()})
	}
	for _, c := range requiredConsents(seg) {
		drivers = append(drivers, Driver{Kind: DriveConsent, Value: c.String()})
	}
	if len(r.GetLifecycleStages()) == 1 {
		drivers = append(drivers, Driver{Kind: DriveStage, Value: r.GetLifecycleStages()[0].String()})
	}
	if r.GetAtRisk() {
		drivers = append(drivers, Driver{Kind: DriveAtRisk})
	}
	if needsOrders(r) {
		drivers = append(drivers, Driver{Kind: DriveBuyers})
	}
	sizes, err := s.store.IndexSizes(ctx, tenant, drivers)
	if err != nil {
		return Driver{}, err
	}
	best := 0
	for i, n := range sizes {
		if n < sizes[best] {
			best = i
		}
	}
	return drivers[best], nil
}

// requiredConsents are the channels a member must have granted: the rule's and the contact channel.
func requiredConsents(seg *Segment) []typev1.Channel {
	out := slices.Clone(seg.GetRule().GetConsentChannels())
	if c := seg.GetContactChannel(); c != 0 && !slices.Contains(out, c) {
		out = append(out, c)
	}
	return out
}

// valueRule reports whether a rule asks about the customer's value.
func valueRule(r *marketingv1.SegmentRule) bool {
	return len(r.GetCustomerTypes()) > 0 || r.MinRecency != nil || r.MinFrequency != nil || r.MinMonetary != nil ||
		r.MinOrders != nil || r.MaxOrders != nil || r.GetMinLifetimeValue() != nil || r.GetMaxLifetimeValue() != nil
}

// needsOrders reports whether only customers with an order can match, so the buyers index may
// drive the walk.
func needsOrders(r *marketingv1.SegmentRule) bool {
	types := r.GetCustomerTypes()
	return (len(types) > 0 && !slices.Contains(types, salesv1.CustomerType_CUSTOMER_TYPE_POTENTIAL.String())) ||
		r.MinRecency != nil || r.MinFrequency != nil || r.MinMonetary != nil || r.GetMinOrders() > 0 ||
		money.Sign(r.GetMinLifetimeValue()) > 0
}

// matchesValue reports whether a customer's evaluated value (nil: no order yet) meets the rule.
func matchesValue(r *marketingv1.SegmentRule, v *salesv1.CustomerValue, now time.Time) bool {
	if v == nil {
		v = &salesv1.CustomerValue{}
	}
	typ := salesv1.TypeOf(v, now).String()
	ltv := func(currency string) *typev1.Money {
		for _, c := range v.GetCurrencies() {
			if c.GetCurrencyCode() == currency {
				return c.GetLifetimeValue()
			}
		}
		return money.Zero(currency)
	}
	atLeast := func(min *int32, score int32) bool { return min == nil || score >= *min }
	inRange := func(lo, hi *typev1.Money) bool {
		if lo != nil {
			if c, _ := money.Compare(ltv(lo.GetCurrencyCode()), lo); c < 0 {
				return false
			}
		}
		if hi != nil {
			if c, _ := money.Compare(ltv(hi.GetCurrencyCode()), hi); c > 0 {
				return false
			}
		}
		return true
	}
	return (len(r.GetCustomerTypes()) == 0 || slices.Contains(r.GetCustomerTypes(), typ)) &&
		atLeast(r.MinRecency, v.GetRfm().GetRecency()) && atLeast(r.MinFrequency, v.GetRfm().GetFrequency()) &&
		atLeast(r.MinMonetary, v.GetRfm().GetMonetary()) &&
		(r.MinOrders == nil || v.GetOrderCount() >= r.GetMinOrders()) && (r.MaxOrders == nil || v.GetOrderCount() <= r.GetMaxOrders()) &&
		inRange(r.GetMinLifetimeValue(), r.GetMaxLifetimeValue())
}

// Matches reports whether a lead, with its customer's facts (its value evaluated at now),
// belongs to a segment.
func Matches(seg *Segment, lead *Lead, facts CustomerFacts, now time.Time) bool {
	r := seg.GetRule()
	anyOf := func(n int, ok bool) bool { return n == 0 || ok }
	for _, c := range requiredConsents(seg) {
		if !slices.ContainsFunc(lead.GetConsent(), func(g *marketingv1.Consent) bool { return g.GetChannel() == c && g.GetGranted() }) {
			return false
		}
	}
	for _, t := range r.GetTags() {
		if !slices.Contains(lead.GetTags(), t) {
			return false
		}
	}
	return anyOf(len(r.GetSourceChannels()), slices.Contains(r.GetSourceChannels(), lead.GetChannel())) &&
		(r.MinScore == nil || lead.GetScore() >= r.GetMinScore()) &&
		(r.MaxScore == nil || lead.GetScore() <= r.GetMaxScore()) &&
		anyOf(len(r.GetLifecycleStages()), slices.Contains(r.GetLifecycleStages(), facts.Stage)) &&
		anyOf(len(r.GetLoyaltyTiers()), slices.Contains(r.GetLoyaltyTiers(), facts.Tier)) &&
		(r.AtRisk == nil || r.GetAtRisk() == facts.AtRisk) &&
		(!valueRule(r) || matchesValue(r, facts.Value, now))
}
