package marketing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
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

// publish appends an envelope built by the producer's Publisher (the service the type names) to the
// producer's stream, reads it back as a consumer would, and returns it.
func (f *reactionFixture) publish(t *testing.T, body eventv1.Body, customer string) *eventv1.Event {
	t.Helper()
	ctx := context.Background()
	producer, _, _ := strings.Cut(body.Type(), ".")
	_, data, err := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}.Envelope(ctx, body, f.tenant, customer, time.Now())
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
	ev, err := events.Decode([]byte(msgs[0].Values["e"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// deliver hands ev to r as marketing's subscription to ev's producer does.
func deliver(r *marketing.Reactions, ev *eventv1.Event) error {
	for _, sub := range events.Subscribe("marketing", r.Routes()...) {
		if sub.Producer == ev.GetProducer() {
			return sub.Handle(context.Background(), ev)
		}
	}
	return fmt.Errorf("marketing does not subscribe to %s events", ev.GetProducer())
}

// handle delivers ev; deliverTwice also delivers it again and checks that the redelivery changed
// nothing at all: no key of the tenant's marketing data and no event.
func (f *reactionFixture) handle(t *testing.T, ev *eventv1.Event) {
	t.Helper()
	if err := deliver(f.reactions, ev); err != nil {
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
		ev, err := events.Decode([]byte(m.Values["e"].(string)))
		if err != nil {
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
	return f.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{
		Id: uuid.NewString(), CustomerId: customer, Total: total, CurrencyCode: total.GetCurrencyCode(),
	}}), customer)
}

func eur(units int64, nanos int32) *typev1.Money {
	return &typev1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
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

func (s *flakyCounts) CountCampaigns(ctx context.Context, tenant string, applied events.Effect, tallies []marketing.CampaignTally) error {
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
	if err := deliver(flaky, ev); err == nil {
		t.Fatal("the first delivery succeeded although counting failed")
	}
	if p, rev := f.points(t, lead.GetCustomerId()), f.performance(t, camp.GetId()).GetWonRevenue().GetUnits(); p != 50 || rev != 0 {
		t.Fatalf("after the partial failure: %d points, %d EUR revenue; want 50 and 0", p, rev)
	}
	stageEvents := len(f.events(t, marketingv1.EventLifecycleStageChanged.Name))
	if err := deliver(flaky, ev); err != nil {
		t.Fatal(err)
	}
	lc := f.stage(t, lead.GetCustomerId())
	if p, rev := f.points(t, lead.GetCustomerId()), f.performance(t, camp.GetId()).GetWonRevenue().GetUnits(); p != 50 || rev != 50 || lc.GetStage() != first || len(lc.GetHistory()) != 2 {
		t.Fatalf("after the retry: %d points, %d EUR revenue, %v after %d moves; want 50, 50, FIRST_TIME_CUSTOMER after 2",
			p, rev, lc.GetStage(), len(lc.GetHistory()))
	}
	if n := len(f.events(t, marketingv1.EventLifecycleStageChanged.Name)); n != stageEvents {
		t.Fatalf("the retry emitted %d more stage events, want none", n-stageEvents)
	}
	f.deliverTwice(t, ev)
}

func TestReactionsStayInTheirTenant(t *testing.T) {
	f := newReactionFixture(t)
	lead := f.capture(t, "mine@example.com", "", "")
	other := *f
	other.tenant = redistest.Tenant(t) + "-other"
	other.deliverTwice(t, other.publish(t, salesv1.EventLeadConverted.Of(&salesv1.LeadConverted{LeadId: lead.GetId()}), lead.GetCustomerId()))
	other.deliverTwice(t, other.placeOrder(t, lead.GetCustomerId(), eur(10, 0)))
	got, err := f.leads.Get(context.Background(), f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_NEW || f.stage(t, lead.GetCustomerId()).GetStage() != prospect || f.points(t, lead.GetCustomerId()) != 0 {
		t.Fatalf("another tenant's events changed the lead or customer: %v %v", got.GetStatus(), f.stage(t, lead.GetCustomerId()).GetStage())
	}
}
