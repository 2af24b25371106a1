package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

var _ marketing.SegmentStore = (*Store)(nil)

func (k leadKeys) segment(id string) string { return k.Key("segment", id) }
func (k leadKeys) segments() string         { return k.Key("segments") }

// driverIndex is the sorted set a member list walks; bucketed for the lead indexes, whose members
// are leadMember (customer indexes hold customer ids as text).
func (k leadKeys) driverIndex(d marketing.Driver) (index string, bucketed bool, err error) {
	switch d.Kind {
	case marketing.DriveAll:
		return k.timeIndex(marketing.LeadFilter{}), true, nil
	case marketing.DriveTag:
		return k.timeIndex(marketing.LeadFilter{Tag: d.Value}), true, nil
	case marketing.DriveConsent:
		return k.consentIndex(d.Value), true, nil
	case marketing.DriveAtRisk:
		return k.atRisk(), false, nil
	case marketing.DriveChannel:
		return k.Key("leads", "channel", d.Value), true, nil
	case marketing.DriveStage:
		return k.Key("customers", "stage", d.Value), false, nil
	case marketing.DriveBuyers:
		return k.buyers(), false, nil
	}
	return "", false, fmt.Errorf("redisstore: unknown segment driver %q", d.Kind)
}

// CreateSegment implements marketing.SegmentStore.
func (s *Store) CreateSegment(ctx context.Context, tenant string, seg *marketing.Segment, event []byte) error {
	k := s.scope(tenant)
	return commit.New().Save(k.segment(seg.GetId()), seg, "", seg.GetEtag()).
		ZAdd(k.segments(), 0, seg.GetId()).Append(k.Stream(), event).Run(ctx, s.rdb)
}

// GetSegment implements marketing.SegmentStore.
func (s *Store) GetSegment(ctx context.Context, tenant, id string) (*marketing.Segment, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).segment(id), &marketing.Segment{}, marketing.ErrSegmentNotFound)
}

// GetSegments implements marketing.SegmentStore: one round trip.
func (s *Store) GetSegments(ctx context.Context, tenant string, ids []string) ([]*marketing.Segment, error) {
	return commit.GetIDs(ctx, s.rdb, ids, s.scope(tenant).segment, func() *marketing.Segment { return &marketing.Segment{} })
}

// ListSegments implements marketing.SegmentStore.
func (s *Store) ListSegments(ctx context.Context, tenant string, p page.Request) (page.Page[*marketing.Segment], error) {
	k := s.scope(tenant)
	return commit.List(ctx, s.rdb, commit.Range{Index: k.segments(), Desc: true, After: p.After, Limit: p.Limit},
		k.segment, func() *marketing.Segment { return &marketing.Segment{} })
}

// DeleteSegment implements marketing.SegmentStore.
func (s *Store) DeleteSegment(ctx context.Context, tenant string, seg *marketing.Segment, event []byte) error {
	k := s.scope(tenant)
	id := seg.GetId()
	err := commit.New().ExpectVersion(k.segment(id), seg.GetEtag()).Delete(k.segment(id)).ZRem(k.segments(), id).
		Append(k.Stream(), event).Run(ctx, s.rdb)
	if errors.Is(err, commit.ErrVersionMismatch) {
		return marketing.ErrStale
	}
	return err
}

// IndexSizes implements marketing.SegmentStore: one pipeline of ZCARDs.
func (s *Store) IndexSizes(ctx context.Context, tenant string, drivers []marketing.Driver) ([]int64, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	counts := make([]func() int64, len(drivers))
	for i, d := range drivers {
		key, bucketed, err := k.driverIndex(d)
		if err != nil {
			return nil, err
		}
		if bucketed {
			cmd := commit.BucketCount(ctx, pipe, key)
			counts[i] = func() int64 { n, _ := cmd.Int64(); return n }
		} else {
			cmd := pipe.ZCard(ctx, key)
			counts[i] = cmd.Val
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]int64, len(counts))
	for i, n := range counts {
		out[i] = n()
	}
	return out, nil
}

// Candidates implements marketing.SegmentStore: the index range, the lead ids of customer members,
// the leads, and the customers' lifecycles and tiers, each one round trip.
func (s *Store) Candidates(ctx context.Context, tenant string, d marketing.Driver, after string, limit int, withFacts bool) ([]marketing.Candidate, error) {
	k := s.scope(tenant)
	index, bucketed, err := k.driverIndex(d)
	if err != nil {
		return nil, err
	}
	if bucketed && after != "" {
		after = leadMember(after)
	}
	listed, err := commit.Members(ctx, s.rdb, commit.Range{Index: index, Desc: true, After: after, Limit: limit, Bucketed: bucketed})
	members := listed.Items
	if err != nil || len(members) == 0 {
		return nil, err
	}
	if bucketed {
		for i, m := range members {
			members[i] = idOfMember(m)
		}
	}
	leadIDs := members
	if d.ByCustomer() {
		ids, err := s.rdb.HMGet(ctx, k.customerLeads(), members...).Result()
		if err != nil {
			return nil, err
		}
		leadIDs = make([]string, len(ids))
		for i, id := range ids {
			leadIDs[i], _ = id.(string) // "" for a customer without a lead
		}
	}
	out := make([]marketing.Candidate, len(members))
	var keys []string
	var of []int // the candidate of each key
	for i, id := range leadIDs {
		out[i].Member = members[i]
		if id != "" {
			keys, of = append(keys, k.lead(id)), append(of, i)
		}
	}
	leads, err := commit.GetMany(ctx, s.rdb, keys, func() *marketing.Lead { return &marketing.Lead{} })
	if err != nil {
		return nil, err
	}
	for j, lead := range leads {
		out[of[j]].Lead = lead // nil when gone (erased)
	}
	if withFacts {
		return out, s.customerFacts(ctx, k, out)
	}
	return out, nil
}

// customerFacts fills in the lifecycle stage, at-risk flag and loyalty tier of candidates' customers.
func (s *Store) customerFacts(ctx context.Context, k leadKeys, cs []marketing.Candidate) error {
	pipe := s.rdb.Pipeline()
	lifecycles := make([]commit.Stored, len(cs))
	tiers := make([]*redis.StringCmd, len(cs))
	for i, c := range cs {
		if c.Lead != nil {
			lifecycles[i] = commit.Read(ctx, pipe, k.lifecycle(c.Lead.GetCustomerId()))
			tiers[i] = pipe.HGet(ctx, k.loyalty(c.Lead.GetCustomerId()), fieldTier)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i := range cs {
		if cs[i].Lead == nil {
			continue
		}
		lc := &marketingv1.CustomerLifecycle{}
		if _, err := lifecycles[i].Decode(lc); err != nil {
			return err
		}
		cs[i].Facts.Stage, cs[i].Facts.AtRisk = lc.GetStage(), lc.GetAtRisk()
		if t, err := tiers[i].Result(); err == nil {
			n, _ := strconv.Atoi(t)
			cs[i].Facts.Tier = marketingv1.LoyaltyTier(n)
		}
	}
	return s.customerValues(ctx, k, cs)
}
