package marketing_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestSubscriptionsMakeClientsAndFlagTheLastCancellation(t *testing.T) {
	f := newReactionFixture(t)
	customer := f.capture(t, "sub@example.com", "", "").GetCustomerId()
	f.handle(t, f.placeOrder(t, customer, eur(10, 0)))
	sub := func(eventType eventv1.Type[*productv1.SubscriptionChanged], id string) *eventv1.Event {
		return f.publish(t, eventType.Of(&productv1.SubscriptionChanged{
			CustomerId: customer, Subscription: &productv1.Subscription{Id: id, CustomerId: customer}}), customer)
	}
	a, b := uuid.NewString(), uuid.NewString()
	steps := []struct {
		eventType eventv1.Type[*productv1.SubscriptionChanged]
		sub       string
		wantStage marketing.Stage
		wantRisk  []string
	}{
		{productv1.EventSubscriptionActivated, a, client, nil},
		{productv1.EventSubscriptionActivated, b, client, nil},
		{productv1.EventSubscriptionCanceled, a, client, nil},
		{productv1.EventSubscriptionExpired, b, client, []string{marketing.RiskSubscriptionCanceled}},
		{productv1.EventSubscriptionActivated, a, client, nil},
	}
	for i, s := range steps {
		f.deliverTwice(t, sub(s.eventType, s.sub))
		lc := f.stage(t, customer)
		if lc.GetStage() != s.wantStage || !slices.Equal(lc.GetAtRiskReasons(), s.wantRisk) || lc.GetAtRisk() != (len(s.wantRisk) > 0) {
			t.Fatalf("step %d (%s): %v at risk %v, want %v at risk %v", i, s.eventType.Name, lc.GetStage(), lc.GetAtRiskReasons(), s.wantStage, s.wantRisk)
		}
	}
}

func TestRiskSignalsAndPromoters(t *testing.T) {
	f := newReactionFixture(t)
	customer := f.capture(t, "risk@example.com", "", "").GetCustomerId()
	adoption := func(band productv1.AdoptionBand) eventv1.Body {
		return productv1.EventAdoptionChanged.Of(&productv1.AdoptionChanged{CustomerId: customer, Adoption: &productv1.Adoption{Band: band}})
	}
	ticket := func(p supportv1.TicketPriority) eventv1.Body {
		return supportv1.EventTicketSlaBreached.Of(&supportv1.TicketSlaBreached{Ticket: &supportv1.TicketFacts{CustomerId: customer, Priority: p}})
	}
	nps := func(score int32) eventv1.Body {
		return supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{CustomerId: customer, Score: score})
	}
	order := salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: uuid.NewString(), CustomerId: customer, Total: eur(1, 0)}})
	steps := []struct {
		name      string
		event     eventv1.Body
		wantStage marketing.Stage
		wantRisk  []string
	}{
		{"a prospect promoter stays", nps(10), prospect, nil},
		{"adoption at risk", adoption(productv1.AdoptionBand_ADOPTION_BAND_AT_RISK), prospect, []string{marketing.RiskLowAdoption}},
		{"normal ticket breach", ticket(supportv1.TicketPriority_TICKET_PRIORITY_NORMAL), prospect, []string{marketing.RiskLowAdoption}},
		{"urgent ticket breach", ticket(supportv1.TicketPriority_TICKET_PRIORITY_URGENT), prospect, []string{marketing.RiskLowAdoption, marketing.RiskUrgentSlaBreach}},
		{"adoption healthy again", adoption(productv1.AdoptionBand_ADOPTION_BAND_HEALTHY), prospect, []string{marketing.RiskUrgentSlaBreach}},
		{"detractor", nps(3), prospect, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"first order", order, first, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"passive", nps(8), first, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"a customer promoter", nps(9), advocate, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
	}
	for _, s := range steps {
		f.deliverTwice(t, f.publish(t, s.event, customer))
		lc := f.stage(t, customer)
		if lc.GetStage() != s.wantStage || !slices.Equal(lc.GetAtRiskReasons(), s.wantRisk) {
			t.Fatalf("%s: %v at risk %v, want %v at risk %v", s.name, lc.GetStage(), lc.GetAtRiskReasons(), s.wantStage, s.wantRisk)
		}
	}
	// Signals about a customer marketing never met change nothing and do not fail.
	f.deliverTwice(t, f.publish(t, supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{CustomerId: uuid.NewString(), Score: 2}), ""))
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
		f.handle(t, f.publish(t, productv1.EventSubscriptionActivated.Of(&productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}), c))
		f.deliverTwice(t, f.publish(t, productv1.EventSubscriptionCanceled.Of(&productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}), c))
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
