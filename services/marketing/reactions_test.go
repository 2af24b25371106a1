package marketing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	prospect = marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
	first    = marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
	repeat   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
	client   = marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	advocate = marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE
)

// reactionFixture is marketing over a real Redis, with its reactions.
type reactionFixture struct {
	rdb       redis.UniversalClient
	keys      *keyspace.Space
	store     *redisstore.Store
	tenant    string
	leads     *marketing.Leads
	campaigns *marketing.Campaigns
	lifecycle *marketing.Lifecycle
	loyalty   *marketing.Loyalty
	referrals *marketing.Referrals
	reactions *marketing.Reactions
}

func newReactionFixture(t *testing.T) *reactionFixture {
	t.Helper()
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	f := &reactionFixture{rdb: rdb, keys: keys, store: store, tenant: redistest.Tenant(t),
		leads:     marketing.NewLeads(store, pub, v, time.Now),
		campaigns: marketing.NewCampaigns(store, pub, v, time.Now),
		lifecycle: marketing.NewLifecycle(store, pub, time.Now),
		loyalty:   marketing.NewLoyalty(store, pub, v, time.Now),
		referrals: marketing.NewReferrals(store, pub, time.Now),
	}
	f.reactions = marketing.NewReactions(store, f.lifecycle, f.loyalty, pub, time.Now)
	return f
}

// publish appends an envelope built by the producer's Publisher to the producer's stream, reads it
// back as a consumer would, and returns it.
func (f *reactionFixture) publish(t *testing.T, producer, eventType, customer string, payload proto.Message) *eventv1.Event {
	t.Helper()
	ctx := context.Background()
	_, data, err := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}.Envelope(ctx, eventType, f.tenant, customer, time.Now(), payload)
	if err != nil {
		t.Fatal(err)
	}
	stream := f.keys.Scope(producer, f.tenant).Stream()
	id, err := f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"e", data}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := f.rdb.XRange(ctx, stream, id, id).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("reading back %s: %v %v", id, msgs, err)
	}
	ev := &eventv1.Event{}
	if err := proto.Unmarshal([]byte(msgs[0].Values["e"].(string)), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// handle delivers ev; deliverTwice also delivers it again and checks that the redelivery changed
// nothing at all: no key of the tenant's marketing data and no event.
func (f *reactionFixture) handle(t *testing.T, ev *eventv1.Event) {
	t.Helper()
	if err := f.reactions.Handle(context.Background(), ev); err != nil {
		t.Fatalf("handling %s: %v", ev.GetType(), err)
	}
}

func (f *reactionFixture) deliverTwice(t *testing.T, ev *eventv1.Event) {
	t.Helper()
	f.handle(t, ev)
	before := f.snapshot(t)
	f.handle(t, ev)
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Fatalf("redelivered %s changed marketing's data (-first +second):\n%s", ev.GetType(), diff)
	}
}

// snapshot is every key of the tenant's marketing data with its content, and the tenant's
// marketing events.
func (f *reactionFixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	prefix := f.keys.Scope("marketing", f.tenant).Key("")
	iter := f.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var content any
		var err error
		switch f.rdb.Type(ctx, key).Val() {
		case "hash":
			content, err = f.rdb.HGetAll(ctx, key).Result()
		case "zset":
			content, err = f.rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		default:
			content, err = f.rdb.Get(ctx, key).Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		out[key] = fmt.Sprint(content)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	out["events"] = fmt.Sprint(len(f.events(t, "")))
	return out
}

// events are the tenant's marketing events of a type (all for "").
func (f *reactionFixture) events(t *testing.T, eventType string) []*eventv1.Event {
	t.Helper()
	msgs, err := f.rdb.XRange(context.Background(), f.keys.Scope("marketing", f.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventv1.Event
	for _, m := range msgs {
		ev := &eventv1.Event{}
		if err := proto.Unmarshal([]byte(m.Values["e"].(string)), ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() == f.tenant && (eventType == "" || ev.GetType() == eventType) {
			out = append(out, ev)
		}
	}
	return out
}

func (f *reactionFixture) campaign(t *testing.T, name string) *marketing.Campaign {
	t.Helper()
	c, err := f.campaigns.Create(context.Background(), f.tenant, &marketing.Campaign{DisplayName: name,
		Channel: typev1.Channel_CHANNEL_EMAIL, Budget: eur(1000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *reactionFixture) capture(t *testing.T, email, campaign, referralCode string) *marketing.Lead {
	t.Helper()
	lead, err := f.leads.Capture(context.Background(), f.tenant, &marketing.Lead{Email: email,
		Channel: typev1.Channel_CHANNEL_EMAIL, CampaignId: campaign, ReferralCode: referralCode})
	if err != nil {
		t.Fatal(err)
	}
	return lead
}

func (f *reactionFixture) performance(t *testing.T, campaign string) *marketingv1.CampaignPerformance {
	t.Helper()
	p, err := f.campaigns.Performance(context.Background(), f.tenant, campaign)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *reactionFixture) stage(t *testing.T, customer string) *marketing.CustomerLifecycle {
	t.Helper()
	lc, err := f.lifecycle.Get(context.Background(), f.tenant, customer)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

func (f *reactionFixture) points(t *testing.T, customer string) int64 {
	t.Helper()
	acct, err := f.loyalty.Account(context.Background(), f.tenant, customer)
	if errors.Is(err, marketing.ErrNoLoyaltyAccount) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return acct.GetPointsBalance()
}

func (f *reactionFixture) placeOrder(t *testing.T, customer string, total *typev1.Money) *eventv1.Event {
	t.Helper()
	return f.publish(t, "sales", "sales.order.placed", customer, &salesv1.OrderPlaced{Order: &salesv1.Order{
		Id: uuid.NewString(), CustomerId: customer, Total: total, CurrencyCode: total.GetCurrencyCode(),
	}})
}

func eur(units int64, nanos int32) *typev1.Money {
	return &typev1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
}

func TestLeadConvertedMarksTheLeadOnceAndCountsTheConversion(t *testing.T) {
	f := newReactionFixture(t)
	camp := f.campaign(t, "spring")
	lead := f.capture(t, "conv@example.com", camp.GetId(), "")
	f.deliverTwice(t, f.publish(t, "sales", "sales.lead.converted", lead.GetCustomerId(),
		&salesv1.LeadConverted{LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), CampaignId: camp.GetId()}))

	got, err := f.leads.Get(context.Background(), f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_CONVERTED {
		t.Fatalf("lead status = %v, want CONVERTED", got.GetStatus())
	}
	if n := f.performance(t, camp.GetId()).GetConversions(); n != 1 {
		t.Fatalf("conversions = %d, want 1", n)
	}
	evs := f.events(t, marketing.EventLeadConverted)
	if len(evs) != 1 {
		t.Fatalf("%d marketing.lead.converted events, want 1", len(evs))
	}

	// A disqualified lead stays out of the funnel.
	out := f.capture(t, "out@example.com", camp.GetId(), "")
	if _, err := f.leads.Disqualify(context.Background(), f.tenant, out.GetId(), "competitor"); err != nil {
		t.Fatal(err)
	}
	f.deliverTwice(t, f.publish(t, "sales", "sales.lead.converted", out.GetCustomerId(), &salesv1.LeadConverted{LeadId: out.GetId()}))
	if n := f.performance(t, camp.GetId()).GetConversions(); n != 1 {
		t.Fatalf("conversions after a disqualified lead's conversion = %d, want 1", n)
	}
}

func TestOrderPlacedMovesCreditsAndAttributesOnce(t *testing.T) {
	f := newReactionFixture(t)
	firstTouch, lastTouch := f.campaign(t, "webinar"), f.campaign(t, "newsletter")
	lead := f.capture(t, "buyer@example.com", firstTouch.GetId(), "")
	f.capture(t, "buyer@example.com", lastTouch.GetId(), "")
	customer := lead.GetCustomerId()

	f.deliverTwice(t, f.placeOrder(t, customer, eur(120, 500_000_000)))
	if lc := f.stage(t, customer); lc.GetStage() != first {
		t.Fatalf("stage after the first order = %v, want FIRST_TIME_CUSTOMER", lc.GetStage())
	}
	if p := f.points(t, customer); p != 120 {
		t.Fatalf("points after a 120.50 EUR order = %d, want 120", p)
	}
	for _, c := range []*marketing.Campaign{firstTouch, lastTouch} {
		if got := f.performance(t, c.GetId()).GetWonRevenue(); !proto.Equal(got, eur(120, 500_000_000)) {
			t.Fatalf("campaign %s won revenue = %v, want 120.50 EUR", c.GetDisplayName(), got)
		}
	}

	f.deliverTwice(t, f.placeOrder(t, customer, eur(80, 0)))
	if lc := f.stage(t, customer); lc.GetStage() != repeat || len(lc.GetHistory()) != 3 {
		t.Fatalf("after the second order: %v after %d moves, want REPEAT_CUSTOMER after 3", lc.GetStage(), len(lc.GetHistory()))
	}
	if p := f.points(t, customer); p != 200 {
		t.Fatalf("points after two orders = %d, want 200", p)
	}
	if got := f.performance(t, firstTouch.GetId()); !proto.Equal(got.GetWonRevenue(), eur(200, 500_000_000)) || got.GetRoi() != 0 {
		t.Fatalf("first-touch performance = %v, want 200.50 EUR won", got)
	}
}

// flakyCounts fails the campaign counting of its first call, as a Redis hiccup would after the
// order's lifecycle and loyalty effects were committed.
type flakyCounts struct {
	*redisstore.Store
	failed bool
}

func (s *flakyCounts) CountCampaigns(ctx context.Context, tenant, applied string, tallies []marketing.CampaignTally) error {
	if !s.failed {
		s.failed = true
		return errors.New("connection reset")
	}
	return s.Store.CountCampaigns(ctx, tenant, applied, tallies)
}

func TestOrderRetryAfterPartialFailureAppliesOnlyWhatIsMissing(t *testing.T) {
	f := newReactionFixture(t)
	camp := f.campaign(t, "retry")
	lead := f.capture(t, "retry@example.com", camp.GetId(), "")
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	flaky := marketing.NewReactions(&flakyCounts{Store: f.store}, f.lifecycle, f.loyalty, pub, time.Now)

	ev := f.placeOrder(t, lead.GetCustomerId(), eur(50, 0))
	if err := flaky.Handle(context.Background(), ev); err == nil {
		t.Fatal("the first delivery succeeded although counting failed")
	}
	if p, rev := f.points(t, lead.GetCustomerId()), f.performance(t, camp.GetId()).GetWonRevenue().GetUnits(); p != 50 || rev != 0 {
		t.Fatalf("after the partial failure: %d points, %d EUR revenue; want 50 and 0", p, rev)
	}
	stageEvents := len(f.events(t, marketing.EventStageChanged))
	if err := flaky.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	lc := f.stage(t, lead.GetCustomerId())
	if p, rev := f.points(t, lead.GetCustomerId()), f.performance(t, camp.GetId()).GetWonRevenue().GetUnits(); p != 50 || rev != 50 || lc.GetStage() != first || len(lc.GetHistory()) != 2 {
		t.Fatalf("after the retry: %d points, %d EUR revenue, %v after %d moves; want 50, 50, FIRST_TIME_CUSTOMER after 2",
			p, rev, lc.GetStage(), len(lc.GetHistory()))
	}
	if n := len(f.events(t, marketing.EventStageChanged)); n != stageEvents {
		t.Fatalf("the retry emitted %d more stage events, want none", n-stageEvents)
	}
	f.deliverTwice(t, ev)
}

func TestReferredCustomersFirstOrderRewardsTheReferrerOnce(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	referrer := f.capture(t, "ada@example.com", "", "").GetCustomerId()
	f.handle(t, f.placeOrder(t, referrer, eur(10, 0)))
	code, err := f.referrals.Create(ctx, f.tenant, referrer)
	if err != nil {
		t.Fatal(err)
	}
	referred := f.capture(t, "grace@example.com", "", code.GetCode()).GetCustomerId()

	f.deliverTwice(t, f.placeOrder(t, referred, eur(30, 0)))
	if p := f.points(t, referrer); p != 10+marketing.ReferralBonusPoints {
		t.Fatalf("referrer points = %d, want %d", p, 10+marketing.ReferralBonusPoints)
	}
	if lc := f.stage(t, referrer); lc.GetStage() != advocate {
		t.Fatalf("referrer stage = %v, want ADVOCATE", lc.GetStage())
	}
	f.deliverTwice(t, f.placeOrder(t, referred, eur(30, 0)))
	if p := f.points(t, referrer); p != 10+marketing.ReferralBonusPoints {
		t.Fatalf("referrer points after the referred customer's second order = %d, want one bonus only", p)
	}

	// A referrer who is no customer yet gets the bonus but stays where they are.
	prospectReferrer := f.capture(t, "linus@example.com", "", "").GetCustomerId()
	code, err = f.referrals.Create(ctx, f.tenant, prospectReferrer)
	if err != nil {
		t.Fatal(err)
	}
	f.deliverTwice(t, f.placeOrder(t, f.capture(t, "ken@example.com", "", code.GetCode()).GetCustomerId(), eur(5, 0)))
	if lc, p := f.stage(t, prospectReferrer), f.points(t, prospectReferrer); lc.GetStage() != prospect || p != marketing.ReferralBonusPoints {
		t.Fatalf("prospect referrer: %v with %d points, want PROSPECT with the bonus", lc.GetStage(), p)
	}
}

func TestSubscriptionsMakeClientsAndFlagTheLastCancellation(t *testing.T) {
	f := newReactionFixture(t)
	customer := f.capture(t, "sub@example.com", "", "").GetCustomerId()
	f.handle(t, f.placeOrder(t, customer, eur(10, 0)))
	sub := func(eventType, id string) *eventv1.Event {
		return f.publish(t, "product", eventType, customer, &productv1.SubscriptionChanged{
			CustomerId: customer, Subscription: &productv1.Subscription{Id: id, CustomerId: customer}})
	}
	a, b := uuid.NewString(), uuid.NewString()
	steps := []struct {
		eventType, sub string
		wantStage      marketing.Stage
		wantRisk       []string
	}{
		{"product.subscription.activated", a, client, nil},
		{"product.subscription.activated", b, client, nil},
		{"product.subscription.canceled", a, client, nil},
		{"product.subscription.expired", b, client, []string{marketing.RiskSubscriptionCanceled}},
		{"product.subscription.activated", a, client, nil},
	}
	for i, s := range steps {
		f.deliverTwice(t, sub(s.eventType, s.sub))
		lc := f.stage(t, customer)
		if lc.GetStage() != s.wantStage || !slices.Equal(lc.GetAtRiskReasons(), s.wantRisk) || lc.GetAtRisk() != (len(s.wantRisk) > 0) {
			t.Fatalf("step %d (%s): %v at risk %v, want %v at risk %v", i, s.eventType, lc.GetStage(), lc.GetAtRiskReasons(), s.wantStage, s.wantRisk)
		}
	}
}

func TestRiskSignalsAndPromoters(t *testing.T) {
	f := newReactionFixture(t)
	customer := f.capture(t, "risk@example.com", "", "").GetCustomerId()
	adoption := func(band productv1.AdoptionBand) proto.Message {
		return &productv1.AdoptionChanged{CustomerId: customer, Adoption: &productv1.Adoption{Band: band}}
	}
	ticket := func(p supportv1.TicketPriority) proto.Message {
		return &supportv1.TicketSlaBreached{Ticket: &supportv1.TicketFacts{CustomerId: customer, Priority: p}}
	}
	nps := func(score int32) proto.Message { return &supportv1.NpsRecorded{CustomerId: customer, Score: score} }
	steps := []struct {
		name, producer, eventType string
		payload                   proto.Message
		wantStage                 marketing.Stage
		wantRisk                  []string
	}{
		{"a prospect promoter stays", "support", "support.nps.recorded", nps(10), prospect, nil},
		{"adoption at risk", "product", "product.adoption.changed", adoption(productv1.AdoptionBand_ADOPTION_BAND_AT_RISK), prospect, []string{marketing.RiskLowAdoption}},
		{"normal ticket breach", "support", "support.ticket.sla_breached", ticket(supportv1.TicketPriority_TICKET_PRIORITY_NORMAL), prospect, []string{marketing.RiskLowAdoption}},
		{"urgent ticket breach", "support", "support.ticket.sla_breached", ticket(supportv1.TicketPriority_TICKET_PRIORITY_URGENT), prospect, []string{marketing.RiskLowAdoption, marketing.RiskUrgentSlaBreach}},
		{"adoption healthy again", "product", "product.adoption.changed", adoption(productv1.AdoptionBand_ADOPTION_BAND_HEALTHY), prospect, []string{marketing.RiskUrgentSlaBreach}},
		{"detractor", "support", "support.nps.recorded", nps(3), prospect, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"first order", "sales", "sales.order.placed", &salesv1.OrderPlaced{Order: &salesv1.Order{Id: uuid.NewString(), CustomerId: customer, Total: eur(1, 0)}}, first, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"passive", "support", "support.nps.recorded", nps(8), first, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"a customer promoter", "support", "support.nps.recorded", nps(9), advocate, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
	}
	for _, s := range steps {
		f.deliverTwice(t, f.publish(t, s.producer, s.eventType, customer, s.payload))
		lc := f.stage(t, customer)
		if lc.GetStage() != s.wantStage || !slices.Equal(lc.GetAtRiskReasons(), s.wantRisk) {
			t.Fatalf("%s: %v at risk %v, want %v at risk %v", s.name, lc.GetStage(), lc.GetAtRiskReasons(), s.wantStage, s.wantRisk)
		}
	}
	// Signals about a customer marketing never met change nothing and do not fail.
	f.deliverTwice(t, f.publish(t, "support", "support.nps.recorded", "", &supportv1.NpsRecorded{CustomerId: uuid.NewString(), Score: 2}))
}

func TestClosedDealsCountForTheirCampaign(t *testing.T) {
	f := newReactionFixture(t)
	camp := f.campaign(t, "deals")
	opp := func(campaign string) *salesv1.Opportunity {
		return &salesv1.Opportunity{Id: uuid.NewString(), CampaignId: campaign}
	}
	f.deliverTwice(t, f.publish(t, "sales", "sales.opportunity.won", "", &salesv1.OpportunityWon{Opportunity: opp(camp.GetId())}))
	f.deliverTwice(t, f.publish(t, "sales", "sales.opportunity.won", "", &salesv1.OpportunityWon{Opportunity: opp(camp.GetId())}))
	f.deliverTwice(t, f.publish(t, "sales", "sales.opportunity.lost", "", &salesv1.OpportunityLost{Opportunity: opp(camp.GetId())}))
	f.deliverTwice(t, f.publish(t, "sales", "sales.opportunity.lost", "", &salesv1.OpportunityLost{Opportunity: opp("")}))
	f.deliverTwice(t, f.publish(t, "sales", "sales.opportunity.won", "", &salesv1.OpportunityWon{Opportunity: opp(uuid.NewString())}))
	if p := f.performance(t, camp.GetId()); p.GetWonDeals() != 2 || p.GetLostDeals() != 1 {
		t.Fatalf("won %d lost %d, want 2 and 1", p.GetWonDeals(), p.GetLostDeals())
	}
}

func TestReactionsStayInTheirTenant(t *testing.T) {
	f := newReactionFixture(t)
	lead := f.capture(t, "mine@example.com", "", "")
	other := *f
	other.tenant = redistest.Tenant(t) + "-other"
	other.deliverTwice(t, other.publish(t, "sales", "sales.lead.converted", lead.GetCustomerId(), &salesv1.LeadConverted{LeadId: lead.GetId()}))
	other.deliverTwice(t, other.placeOrder(t, lead.GetCustomerId(), eur(10, 0)))
	got, err := f.leads.Get(context.Background(), f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_NEW || f.stage(t, lead.GetCustomerId()).GetStage() != prospect || f.points(t, lead.GetCustomerId()) != 0 {
		t.Fatalf("another tenant's events changed the lead or customer: %v %v", got.GetStatus(), f.stage(t, lead.GetCustomerId()).GetStage())
	}
}

func TestChurnAfterTheWindowWithNothingActive(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	clock := time.Now()
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	f.reactions = marketing.NewReactions(f.store, f.lifecycle, f.loyalty, pub, func() time.Time { return clock })
	partition := f.keys.Partition(f.tenant)
	sweep := func(at time.Time) int {
		t.Helper()
		clock = at
		n, err := f.reactions.SweepChurn(ctx, partition)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	customer := f.capture(t, "churn@example.com", "", "").GetCustomerId()
	stays := f.capture(t, "stays@example.com", "", "").GetCustomerId()
	for _, c := range []string{customer, stays} {
		sub := &productv1.Subscription{Id: uuid.NewString(), CustomerId: c}
		f.handle(t, f.publish(t, "product", "product.subscription.activated", c, &productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}))
		f.deliverTwice(t, f.publish(t, "product", "product.subscription.canceled", c, &productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}))
	}
	// A new order within the window cancels the churn of the second customer.
	f.handle(t, f.placeOrder(t, stays, eur(10, 0)))

	start := time.Now()
	if n := sweep(start.Add(marketing.ChurnWindow - time.Hour)); n != 0 || f.stage(t, customer).GetStage() != client {
		t.Fatalf("before the window ran out: %d churned, stage %v", n, f.stage(t, customer).GetStage())
	}
	if n := sweep(start.Add(marketing.ChurnWindow + time.Hour)); n != 1 {
		t.Fatalf("after the window: %d churned, want 1", n)
	}
	if lc := f.stage(t, customer); lc.GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
		t.Fatalf("stage after the window = %v, want CHURNED", lc.GetStage())
	}
	if lc := f.stage(t, stays); lc.GetStage() != client {
		t.Fatalf("the customer who ordered again is %v, want still CLIENT", lc.GetStage())
	}
	if n := sweep(start.Add(2 * marketing.ChurnWindow)); n != 0 {
		t.Fatalf("a second sweep churned %d, want none", n)
	}
	// An order brings a churned customer back.
	f.handle(t, f.placeOrder(t, customer, eur(10, 0)))
	if lc := f.stage(t, customer); lc.GetStage() != repeat {
		t.Fatalf("after an order a churned customer is %v, want REPEAT_CUSTOMER", lc.GetStage())
	}
}

func TestOrderPointsFollowTheTenantsEarnRate(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	_, err := f.loyalty.UpdateProgram(ctx, f.tenant, &marketingv1.LoyaltyProgram{PointsPerUnit: 10, CurrencyCode: "EUR"},
		&fieldmaskpb.FieldMask{Paths: []string{"points_per_unit", "currency_code"}})
	if err != nil {
		t.Fatal(err)
	}
	customer := f.capture(t, "rate@example.com", "", "").GetCustomerId()
	f.deliverTwice(t, f.placeOrder(t, customer, eur(12, 340_000_000)))
	f.deliverTwice(t, f.placeOrder(t, customer, &typev1.Money{CurrencyCode: "USD", Units: 50}))
	if p := f.points(t, customer); p != 123 {
		t.Fatalf("points = %d, want 123 (12.34 EUR at 10 a euro; USD earns nothing)", p)
	}
	if lc := f.stage(t, customer); lc.GetStage() != repeat {
		t.Fatalf("stage = %v, want REPEAT_CUSTOMER: an order that earns no points still counts", lc.GetStage())
	}
}
