package marketing

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Segment is the stored and served form of a segment.
type Segment = marketingv1.Segment

// Errors of segments.
var (
	ErrSegmentNotFound = apierr.New(apierr.NotFound, "SEGMENT_NOT_FOUND", "segment not found")
	ErrSegmentScore    = apierr.Invalid("segment.rule.max_score", "must not be below min_score")
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
)

// ByCustomer reports whether the driver's members are customer ids rather than lead ids.
func (d Driver) ByCustomer() bool { return d.Kind == DriveStage || d.Kind == DriveAtRisk }

// CustomerFacts are what a segment rule asks about a lead's customer.
type CustomerFacts struct {
	Stage  Stage
	AtRisk bool
	Tier   marketingv1.LoyaltyTier
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
	// DeleteSegment removes a segment; ErrSegmentNotFound if there is none.
	DeleteSegment(ctx context.Context, tenant, id string, event []byte) error
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

// Delete removes a segment.
func (s *Segments) Delete(ctx context.Context, tenant, id string) error {
	_, ev, err := s.publisher.Envelope(ctx, marketingv1.EventSegmentDeleted.Of(&marketingv1.Segment{Id: id}), tenant, "", s.now())
	if err != nil {
		return err
	}
	return s.store.DeleteSegment(ctx, tenant, id, ev)
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
	withFacts := len(r.GetLifecycleStages()) > 0 || len(r.GetLoyaltyTiers()) > 0 || r.AtRisk != nil
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
			if c.Lead != nil && Matches(seg, c.Lead, c.Facts) {
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

// Matches reports whether a lead, with its customer's facts, belongs to a segment.
func Matches(seg *Segment, lead *Lead, facts CustomerFacts) bool {
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
		(r.AtRisk == nil || r.GetAtRisk() == facts.AtRisk)
}
