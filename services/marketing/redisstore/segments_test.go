package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// population is a generated tenant: its leads and what each lead's customer is.
type population struct {
	leads []*marketing.Lead
	facts map[string]marketing.CustomerFacts // by customer id
}

// populate stores n leads with random channels, consents, tags and scores; gives about half of
// their customers a lifecycle stage, some an at-risk flag, some loyalty points.
func (f fixture) populate(t *testing.T, n int) population {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	lc := f.lifecycle(time.Now)
	loyalty := marketing.NewLoyalty(f.store, f.publisher(), validator(t), time.Now)
	pop := population{facts: map[string]marketing.CustomerFacts{}}
	tags := []string{"vip", "webinar", "partner"}
	stages := []marketing.Stage{prospect, first, client, advocate}
	for i := range n {
		lead := &marketing.Lead{
			Id: uuid.Must(uuid.NewV7()).String(), CustomerId: uuid.Must(uuid.NewV7()).String(),
			Email: fmt.Sprintf("seg%d@example.com", i), Status: marketingv1.LeadStatus_LEAD_STATUS_NEW,
			Channel: typev1.Channel(1 + rng.IntN(7)), Score: int32(rng.IntN(60)), Etag: "1",
		}
		for _, ch := range []typev1.Channel{typev1.Channel_CHANNEL_EMAIL, typev1.Channel_CHANNEL_SOCIAL} {
			if r := rng.IntN(3); r < 2 { // granted, withdrawn, or never asked
				lead.Consent = append(lead.Consent, &marketingv1.Consent{Channel: ch, Granted: r == 0})
			}
		}
		for _, tag := range tags {
			if rng.IntN(4) == 0 {
				lead.Tags = append(lead.Tags, tag)
			}
		}
		if err := f.store.CreateLead(ctx, f.tenant, marketing.LeadWrite{Lead: lead}); err != nil {
			t.Fatal(err)
		}
		var facts marketing.CustomerFacts
		if rng.IntN(2) == 0 {
			facts.Stage = stages[rng.IntN(len(stages))]
			if _, err := lc.Move(ctx, f.tenant, lead.GetCustomerId(), marketing.LifecycleMove{Stage: facts.Stage, Cause: "test"}); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(5) == 0 {
				facts.AtRisk = true
				if _, err := lc.SetAtRisk(ctx, f.tenant, lead.GetCustomerId(), "test", "", ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rng.IntN(10) == 0 {
			// A credit needs the customer in the registry.
			if err := f.store.PutCustomer(ctx, f.tenant, marketing.CustomerWrite{Customer: marketing.NewCustomer(lead.GetCustomerId(),
				marketing.IdentityKey{ExternalID: lead.GetId()}, marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CAPTURE, time.Now())}); err != nil {
				t.Fatal(err)
			}
			points := []int64{100, 1500, 6000}[rng.IntN(3)]
			_, acct, err := loyalty.Credit(ctx, f.tenant, lead.GetCustomerId(), points, "test")
			if err != nil {
				t.Fatal(err)
			}
			facts.Tier = acct.GetTier()
		}
		pop.leads = append(pop.leads, lead)
		pop.facts[lead.GetCustomerId()] = facts
	}
	return pop
}

func TestSegmentMembersPageLikeAnIndependentComputation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	pop := f.populate(t, 5000)
	segments := marketing.NewSegments(f.store, f.publisher(), time.Now)
	minScore, maxScore, yes, no := int32(30), int32(45), true, false
	for _, tt := range []struct {
		name string
		seg  *marketing.Segment
		// independent: whether a lead belongs, written out without marketing.Matches
		independent func(l *marketing.Lead, c marketing.CustomerFacts) bool
	}{
		{"e-mail segment: only consented leads", &marketing.Segment{ContactChannel: typev1.Channel_CHANNEL_EMAIL, Rule: &marketingv1.SegmentRule{}},
			func(l *marketing.Lead, _ marketing.CustomerFacts) bool {
				return granted(l, typev1.Channel_CHANNEL_EMAIL)
			}},
		{"clients tagged vip", &marketing.Segment{Rule: &marketingv1.SegmentRule{LifecycleStages: []marketing.Stage{client}, Tags: []string{"vip"}}},
			func(l *marketing.Lead, c marketing.CustomerFacts) bool {
				return c.Stage == client && slices.Contains(l.GetTags(), "vip")
			}},
		{"at-risk customers scoring 30 to 45, e-mailable", &marketing.Segment{ContactChannel: typev1.Channel_CHANNEL_EMAIL,
			Rule: &marketingv1.SegmentRule{AtRisk: &yes, MinScore: &minScore, MaxScore: &maxScore}},
			func(l *marketing.Lead, c marketing.CustomerFacts) bool {
				return c.AtRisk && l.GetScore() >= 30 && l.GetScore() <= 45 && granted(l, typev1.Channel_CHANNEL_EMAIL)
			}},
		{"gold or platinum from ads or events", &marketing.Segment{Rule: &marketingv1.SegmentRule{
			LoyaltyTiers:   []marketingv1.LoyaltyTier{marketingv1.LoyaltyTier_LOYALTY_TIER_GOLD, marketingv1.LoyaltyTier_LOYALTY_TIER_PLATINUM},
			SourceChannels: []typev1.Channel{typev1.Channel_CHANNEL_ADS, typev1.Channel_CHANNEL_EVENT}}},
			func(l *marketing.Lead, c marketing.CustomerFacts) bool {
				return (c.Tier == marketingv1.LoyaltyTier_LOYALTY_TIER_GOLD || c.Tier == marketingv1.LoyaltyTier_LOYALTY_TIER_PLATINUM) &&
					(l.GetChannel() == typev1.Channel_CHANNEL_ADS || l.GetChannel() == typev1.Channel_CHANNEL_EVENT)
			}},
		// Rare over every lead: calls examine a bounded number of candidates and may return short
		// or empty pages with a token.
		{"rare: score 59, not at risk, social consent", &marketing.Segment{Rule: &marketingv1.SegmentRule{
			MinScore: ptr(int32(59)), AtRisk: &no, ConsentChannels: []typev1.Channel{typev1.Channel_CHANNEL_SOCIAL}}},
			func(l *marketing.Lead, c marketing.CustomerFacts) bool {
				return l.GetScore() >= 59 && !c.AtRisk && granted(l, typev1.Channel_CHANNEL_SOCIAL)
			}},
		{"everyone", &marketing.Segment{Rule: &marketingv1.SegmentRule{}},
			func(*marketing.Lead, marketing.CustomerFacts) bool { return true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.seg.DisplayName = tt.name
			seg, err := segments.Create(ctx, f.tenant, tt.seg)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, l := range pop.leads {
				if tt.independent(l, pop.facts[l.GetCustomerId()]) {
					want[l.GetId()] = true
				}
			}
			got := map[string]bool{}
			var cursor *marketing.MemberCursor
			calls := 0
			for {
				calls++
				page, next, err := segments.Members(ctx, f.tenant, seg.GetId(), cursor, 97)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 97 {
					t.Fatalf("page of %d leads, asked 97", len(page))
				}
				for _, l := range page {
					if got[l.GetId()] {
						t.Fatalf("lead %s on two pages", l.GetId())
					}
					got[l.GetId()] = true
				}
				if next == nil {
					break
				}
				cursor = next
			}
			missing, extra := 0, 0
			for id := range want {
				if !got[id] {
					missing++
				}
			}
			for id := range got {
				if !want[id] {
					extra++
				}
			}
			if missing != 0 || extra != 0 || len(want) == 0 {
				t.Fatalf("%d members expected; %d missing, %d not members listed (%d calls)", len(want), missing, extra, calls)
			}
		})
	}
}

func granted(l *marketing.Lead, ch typev1.Channel) bool {
	return slices.ContainsFunc(l.GetConsent(), func(c *marketingv1.Consent) bool { return c.GetChannel() == ch && c.GetGranted() })
}

func ptr[T any](v T) *T { return &v }
