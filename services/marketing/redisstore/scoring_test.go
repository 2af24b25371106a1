package redisstore_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// clock is a controlled deps.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (f fixture) publisher() events.Publisher {
	return events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
}

// withClock returns lead and scoring use cases on the fixture's store that read time from c.
func (f fixture) withClock(t *testing.T, c *clock) (*marketing.Leads, *marketing.Scoring) {
	return marketing.NewLeads(f.store, f.publisher(), validator(t), c.Now),
		marketing.NewScoring(f.store, f.publisher(), validator(t), c.Now)
}

// eventsOfType returns the payloads of the tenant's events of one type, in stream order.
func (f fixture) eventsOfType(t *testing.T, eventType string) []*eventv1.Event {
	t.Helper()
	msgs, err := f.rdb.XRange(context.Background(), f.keys.Scope("marketing", f.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventv1.Event
	for _, m := range msgs {
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() == f.tenant && ev.GetType() == eventType {
			out = append(out, ev)
		}
	}
	return out
}

func engagement(t marketingv1.EngagementType) *marketingv1.Engagement {
	return &marketingv1.Engagement{Type: t}
}

func TestScoreDecaysWithHalfLife(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	leads, scoring := f.withClock(t, c)
	// Only engagement points, 10 per form, a 10-day half-life, a threshold out of reach: the mask
	// names every rule, so those left empty are cleared.
	_, err := scoring.Update(ctx, f.tenant, &marketing.ScoringRules{
		EngagementPoints: []*marketingv1.EngagementPoints{{Type: marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT, Points: 10}},
		HalfLifeDays:     10, MqlThreshold: 1000,
	}, &fieldmaskpb.FieldMask{Paths: []string{"engagement_points", "half_life_days", "company_points", "consent_points", "channel_points", "mql_threshold"}})
	if err != nil {
		t.Fatal(err)
	}
	lead, err := leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "decay@example.com", Company: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	form := engagement(marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT)
	start := c.Now()
	steps := []struct {
		name    string
		advance time.Duration
		in      *marketingv1.Engagement
		want    float64
	}{
		{"first form", 0, form, 10},
		{"one half-life later, another", 10 * 24 * time.Hour, form, 15},
		{"two more half-lives, another", 20 * 24 * time.Hour, form, 13.75},
		// An engagement reported late counts with the age it has.
		{"a form from one half-life ago", 0, &marketingv1.Engagement{Type: form.GetType(),
			OccurredTime: timestamppb.New(start.Add(20 * 24 * time.Hour))}, 18.75},
	}
	for _, s := range steps {
		c.advance(s.advance)
		_, got, err := leads.RecordEngagement(ctx, f.tenant, lead.GetId(), s.in)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if math.Abs(got.GetEngagementPoints()-s.want) > 1e-9 || got.GetScore() != int32(math.Round(s.want)) {
			t.Fatalf("%s: engagement points %v, score %d; want %v and %d", s.name, got.GetEngagementPoints(), got.GetScore(), s.want, int32(math.Round(s.want)))
		}
	}
	// The stored score is as of score_time; any later write brings it to its time.
	c.advance(10 * 24 * time.Hour)
	got, err := leads.Qualify(ctx, f.tenant, lead.GetId(), "")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.GetEngagementPoints()-18.75/2) > 1e-9 || !got.GetScoreTime().AsTime().Equal(c.Now()) {
		t.Fatalf("after one more half-life: %v at %v, want %v at %v", got.GetEngagementPoints(), got.GetScoreTime().AsTime(), 18.75/2, c.Now())
	}
}

func TestFitPointsAndAutomaticQualificationOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	leads, _ := f.withClock(t, c)
	// Defaults: company 10, consent 5, REFERRAL 10; threshold 50; event attended 15.
	lead, err := leads.Capture(ctx, f.tenant, &marketing.Lead{
		Email: "fit@example.com", Company: "Acme", Channel: typev1.Channel_CHANNEL_WEB,
		Consent: []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if lead.GetScore() != 15 || lead.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_NEW {
		t.Fatalf("captured: score %d, status %v; want fit points 15 and NEW", lead.GetScore(), lead.GetStatus())
	}
	event := engagement(marketingv1.EngagementType_ENGAGEMENT_TYPE_EVENT_ATTENDED)
	wantStatus := []marketingv1.LeadStatus{
		marketingv1.LeadStatus_LEAD_STATUS_ENGAGED, marketingv1.LeadStatus_LEAD_STATUS_ENGAGED, // 30, 45
		marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED, marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED, // 60, 75
	}
	for i, want := range wantStatus {
		_, got, err := leads.RecordEngagement(ctx, f.tenant, lead.GetId(), event)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus() != want || got.GetScore() != int32(15+15*(i+1)) {
			t.Fatalf("engagement %d: %v with %d, want %v with %d", i+1, got.GetStatus(), got.GetScore(), want, 15+15*(i+1))
		}
	}
	if n := len(f.eventsOfType(t, marketingv1.EventLeadQualified.Name)); n != 1 {
		t.Fatalf("%d qualified events, want 1", n)
	}
	if n := len(f.eventsOfType(t, marketingv1.EventLeadEngaged.Name)); n != 4 {
		t.Fatalf("%d engaged events, want 4", n)
	}
}

func TestConcurrentEngagementsQualifyOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	campaigns := marketing.NewCampaigns(f.store, f.publisher(), validator(t), time.Now)
	camp, err := campaigns.Create(ctx, f.tenant, &marketing.Campaign{DisplayName: "Spring", Channel: typev1.Channel_CHANNEL_EMAIL})
	if err != nil {
		t.Fatal(err)
	}
	lead, err := f.leads.Capture(ctx, f.tenant, &marketing.Lead{Email: "race@example.com", CampaignId: camp.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 24 // 24 forms of 10 points: the threshold (50) is crossed by the fifth
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			_, _, err := f.leads.RecordEngagement(ctx, f.tenant, lead.GetId(),
				&marketingv1.Engagement{Type: marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT, CampaignId: camp.GetId()})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.leads.Get(ctx, f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	perf, err := campaigns.Performance(ctx, f.tenant, camp.GetId())
	if err != nil {
		t.Fatal(err)
	}
	qualified := f.eventsOfType(t, marketingv1.EventLeadQualified.Name)
	if got.GetEngagementCount() != writers || got.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED ||
		len(qualified) != 1 || perf.GetMarketingQualifiedLeads() != 1 || len(f.eventsOfType(t, marketingv1.EventLeadEngaged.Name)) != writers {
		t.Fatalf("after %d concurrent engagements: count %d, status %v, %d qualified events, %d MQLs; want %d, MQL, 1, 1",
			writers, got.GetEngagementCount(), got.GetStatus(), len(qualified), perf.GetMarketingQualifiedLeads(), writers)
	}
}

func TestScoringRulesUpdateWithMaskAndEtag(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, scoring := f.withClock(t, &clock{t: time.Now()})
	rules, err := scoring.Rules(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(rules, marketing.DefaultScoringRules()) {
		t.Fatalf("rules of a new tenant = %v, want the defaults", rules)
	}
	updated, err := scoring.Update(ctx, f.tenant, &marketing.ScoringRules{MqlThreshold: 70, Etag: rules.GetEtag()},
		&fieldmaskpb.FieldMask{Paths: []string{"mqlThreshold"}})
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetMqlThreshold() != 70 || updated.GetHalfLifeDays() != 30 || updated.GetEtag() == rules.GetEtag() {
		t.Fatalf("updated = %v; want threshold 70, the rest default, a new etag", updated)
	}
	if _, err := scoring.Update(ctx, f.tenant, &marketing.ScoringRules{MqlThreshold: 80, Etag: rules.GetEtag()},
		&fieldmaskpb.FieldMask{Paths: []string{"mql_threshold"}}); err == nil {
		t.Fatal("update with the etag of the defaults after a change succeeded, want ETAG_MISMATCH")
	}
	if _, err := scoring.Update(ctx, f.tenant, &marketing.ScoringRules{}, &fieldmaskpb.FieldMask{Paths: []string{"mql_threshold"}}); err == nil {
		t.Fatal("threshold 0 accepted")
	}
	again, err := scoring.Rules(ctx, f.tenant)
	if err != nil || !proto.Equal(again, updated) {
		t.Fatalf("rules read back = %v, %v; want %v", again, err, updated)
	}
}

func maskOf(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
