package redisstore_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// generatedLeads stores n leads with random status, channel, campaign, tags and score straight
// through the store, and returns them as written.
func (f fixture) generatedLeads(t *testing.T, n int, campaigns []string, seed uint64) []*marketing.Lead {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	tags := []string{"vip", "webinar", "trial", "partner"}
	leads := make([]*marketing.Lead, n)
	for i := range leads {
		lead := &marketing.Lead{
			Id: uuid.Must(uuid.NewV7()).String(), CustomerId: uuid.Must(uuid.NewV7()).String(),
			Email:   fmt.Sprintf("gen%d@example.com", i),
			Status:  marketingv1.LeadStatus(1 + rng.IntN(5)),
			Channel: typev1.Channel(rng.IntN(8)),
			Score:   int32(rng.IntN(60)), // many ties: pages must still neither skip nor repeat
			Etag:    "1",
		}
		if c := rng.IntN(len(campaigns) + 1); c < len(campaigns) {
			lead.CampaignId = campaigns[c]
		}
		for _, tag := range tags {
			if rng.IntN(3) == 0 {
				lead.Tags = append(lead.Tags, tag)
			}
		}
		if err := f.store.CreateLead(context.Background(), f.tenant, marketing.LeadWrite{Lead: lead}); err != nil {
			t.Fatal(err)
		}
		leads[i] = lead
	}
	return leads
}

// listAll pages through a query and returns the ids in order.
func (f fixture) listAll(t *testing.T, q marketing.LeadQuery) []string {
	t.Helper()
	var ids []string
	for range 10_000 {
		page, err := f.store.ListLeads(context.Background(), f.tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > q.Limit {
			t.Fatalf("page of %d, limit %d", len(page.Items), q.Limit)
		}
		for _, l := range page.Items {
			ids = append(ids, l.GetId())
		}
		if page.Next == "" {
			return ids
		}
		q.After = page.Next
	}
	t.Fatal("list does not end")
	return nil
}

func TestLeadListsPageLikeAnIndependentSort(t *testing.T) {
	f := setup(t)
	campaigns := []string{uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()}
	leads := f.generatedLeads(t, 2000, campaigns, 7)
	newestFirst := func(a, b *marketing.Lead) int { return cmp.Compare(b.GetId(), a.GetId()) }
	byScore := func(a, b *marketing.Lead) int {
		return cmp.Or(cmp.Compare(b.GetScore(), a.GetScore()), newestFirst(a, b))
	}
	for _, tt := range []struct {
		filter, orderBy string
		keep            func(*marketing.Lead) bool
	}{
		{"", "", func(*marketing.Lead) bool { return true }},
		{"status = LEAD_STATUS_ENGAGED", "", func(l *marketing.Lead) bool { return l.GetStatus() == marketingv1.LeadStatus_LEAD_STATUS_ENGAGED }},
		{"channel = CHANNEL_ADS", "", func(l *marketing.Lead) bool { return l.GetChannel() == typev1.Channel_CHANNEL_ADS }},
		{`campaign_id = "` + campaigns[1] + `"`, "", func(l *marketing.Lead) bool { return l.GetCampaignId() == campaigns[1] }},
		{`tags:"vip"`, "", func(l *marketing.Lead) bool { return slices.Contains(l.GetTags(), "vip") }},
		{"", "score desc", func(*marketing.Lead) bool { return true }},
		{"score >= 20 AND score <= 40", "", func(l *marketing.Lead) bool { return l.GetScore() >= 20 && l.GetScore() <= 40 }},
		{"status = LEAD_STATUS_NEW AND score > 50", "score desc", func(l *marketing.Lead) bool {
			return l.GetStatus() == marketingv1.LeadStatus_LEAD_STATUS_NEW && l.GetScore() > 50
		}},
		{"score = 0", "", func(l *marketing.Lead) bool { return l.GetScore() == 0 }},
	} {
		t.Run(tt.filter+"|"+tt.orderBy, func(t *testing.T) {
			q, err := marketing.ParseLeadList(tt.filter, tt.orderBy)
			if err != nil {
				t.Fatal(err)
			}
			var want []*marketing.Lead
			for _, l := range leads {
				if tt.keep(l) {
					want = append(want, l)
				}
			}
			slices.SortFunc(want, newestFirst)
			if q.ByScore {
				slices.SortFunc(want, byScore)
			}
			wantIDs := make([]string, len(want))
			for i, l := range want {
				wantIDs[i] = l.GetId()
			}
			q.Limit = 37
			if diff := gocmp.Diff(wantIDs, f.listAll(t, q)); diff != "" || len(wantIDs) == 0 {
				t.Fatalf("%d expected leads; pages differ from the independent sort (-want +got):\n%s", len(wantIDs), diff)
			}
		})
	}
}

func TestIndexesFollowScoreStatusAndTags(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "ix@example.com", Tags: []string{"old"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 { // 6 forms of 10: qualified at 50, scored 60
		if _, _, err := f.leads.RecordEngagement(ctx, f.tenant, lead.GetId(), engagement(marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.leads.Update(ctx, f.tenant, &marketing.Lead{Id: lead.GetId(), Tags: []string{"new"}}, maskOf("tags")); err != nil {
		t.Fatal(err)
	}
	count := func(filter, orderBy string) int {
		q, err := marketing.ParseLeadList(filter, orderBy)
		if err != nil {
			t.Fatal(err)
		}
		q.Limit = 100
		return len(f.listAll(t, q))
	}
	checks := []struct {
		filter, orderBy string
		want            int
	}{
		{"", "score desc", 1},
		{"score >= 60 AND score <= 60", "", 1},
		{"score < 60", "", 0},
		{"status = LEAD_STATUS_MARKETING_QUALIFIED AND score >= 60", "", 1},
		{"status = LEAD_STATUS_ENGAGED", "score desc", 0},
		{"status = LEAD_STATUS_NEW", "", 0},
		{`tags:"old"`, "", 0},
		{`tags:"new"`, "", 1},
	}
	for _, c := range checks {
		if got := count(c.filter, c.orderBy); got != c.want {
			t.Errorf("%q %q lists %d leads, want %d", c.filter, c.orderBy, got, c.want)
		}
	}
	if err := f.leads.Erase(ctx, f.tenant, lead.GetId(), ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if got := count(c.filter, c.orderBy); got != 0 {
			t.Errorf("after erasure %q %q lists %d leads, want 0", c.filter, c.orderBy, got)
		}
	}
}
