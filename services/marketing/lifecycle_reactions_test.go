package marketing_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/timestamppb"

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
		// CLIENT only while a recurring subscription is active: back to the order count.
		{productv1.EventSubscriptionExpired, b, first, []string{marketing.RiskSubscriptionCanceled}},
		// An end is final: a late activation of an ended subscription changes nothing.
		{productv1.EventSubscriptionActivated, a, first, []string{marketing.RiskSubscriptionCanceled}},
		{productv1.EventSubscriptionActivated, uuid.NewString(), client, nil},
	}
	for i, s := range steps {
		f.deliverTwice(t, sub(s.eventType, s.sub))
		lc := f.stage(t, customer)
		if lc.GetStage() != s.wantStage || !slices.Equal(lc.GetAtRiskReasons(), s.wantRisk) || lc.GetAtRisk() != (len(s.wantRisk) > 0) {
			t.Fatalf("step %d (%s): %v at risk %v, want %v at risk %v", i, s.eventType.Name, lc.GetStage(), lc.GetAtRiskReasons(), s.wantStage, s.wantRisk)
		}
	}
}

// TestOneTimeGrantEventsMoveNothing: subscription events about a one-time grant (what the product
// service emitted when a one-time entitlement could still be canceled as a subscription, and may
// still sit in its stream) neither make a CLIENT nor flag at risk, whether the customer bought once
// or is a client of a recurring subscription.
func TestOneTimeGrantEventsMoveNothing(t *testing.T) {
	f := newReactionFixture(t)
	buyer := f.capture(t, "once@example.com", "", "").GetCustomerId()
	clientOf := f.capture(t, "client@example.com", "", "").GetCustomerId()
	oneTime := func(eventType eventv1.Type[*productv1.SubscriptionChanged], customer, id string, status productv1.SubscriptionStatus) *eventv1.Event {
		return f.publish(t, eventType.Of(&productv1.SubscriptionChanged{CustomerId: customer, Subscription: &productv1.Subscription{
			Id: id, CustomerId: customer, Status: status, BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME}}), customer)
	}
	f.handle(t, f.placeOrder(t, buyer, eur(10, 0)))
	f.handle(t, f.placeOrder(t, clientOf, eur(10, 0)))
	f.deliverTwice(t, f.publish(t, productv1.EventSubscriptionActivated.Of(&productv1.SubscriptionChanged{CustomerId: clientOf,
		Subscription: &productv1.Subscription{Id: uuid.NewString(), CustomerId: clientOf, Status: productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE,
			BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY}}), clientOf))
	for customer, want := range map[string]marketing.Stage{buyer: first, clientOf: client} {
		grant := uuid.NewString()
		f.deliverTwice(t, oneTime(productv1.EventSubscriptionActivated, customer, grant, productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE))
		f.deliverTwice(t, oneTime(productv1.EventSubscriptionCanceled, customer, grant, productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED))
		if lc := f.stage(t, customer); lc.GetStage() != want || lc.GetAtRisk() || len(lc.GetAtRiskReasons()) > 0 {
			t.Errorf("after a one-time grant's activation and cancellation: %v at risk %v, want %v and no risk", lc.GetStage(), lc.GetAtRiskReasons(), want)
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
		// The promoter fact stands whatever came first: with the first order, an ADVOCATE (the
		// stage never depends on the order events arrive in).
		{"first order", order, advocate, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
		{"passive", nps(8), advocate, []string{marketing.RiskUrgentSlaBreach, marketing.RiskNpsDetractor}},
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
		sub := &productv1.Subscription{Id: uuid.NewString(), CustomerId: c, OrderId: uuid.NewString()}
		f.handle(t, f.publish(t, productv1.EventSubscriptionActivated.Of(&productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}), c))
		f.deliverTwice(t, f.publish(t, productv1.EventSubscriptionCanceled.Of(&productv1.SubscriptionChanged{CustomerId: c, Subscription: sub}), c))
	}
	// A new order two hours later moves the second customer's window on.
	f.handle(t, f.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{
		Id: uuid.NewString(), CustomerId: stays, Total: eur(10, 0), CreateTime: timestamppb.New(time.Now().Add(2 * time.Hour)),
	}}), stays))

	// The partition's schedule is shared with other tenants of this package's Redis (other tests'
	// customers may fall due too), so the sweeps are judged by this tenant's stages.
	start := time.Now()
	sweep(start.Add(marketing.DefaultChurnWindow - time.Hour))
	if got := f.stage(t, customer).GetStage(); got != first {
		t.Fatalf("before the window ran out: stage %v, want FIRST_TIME_CUSTOMER", got)
	}
	if n := sweep(start.Add(marketing.DefaultChurnWindow + time.Hour)); n < 1 {
		t.Fatalf("after the window: %d restaged, want at least 1", n)
	}
	if lc := f.stage(t, customer); lc.GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
		t.Fatalf("stage after the window = %v, want CHURNED", lc.GetStage())
	}
	if lc := f.stage(t, stays); lc.GetStage() != repeat {
		t.Fatalf("the customer who ordered again within the window is %v, want REPEAT_CUSTOMER", lc.GetStage())
	}
	sweep(start.Add(marketing.DefaultChurnWindow + 90*time.Minute))
	// PROSPECT, FIRST_TIME_CUSTOMER on the way to CLIENT (the subscription came without its order),
	// FIRST_TIME_CUSTOMER after the cancellation, CHURNED.
	if lc := f.stage(t, customer); len(lc.GetHistory()) != 5 {
		t.Fatalf("a second sweep moved the churned customer again: %v", lc.GetHistory())
	}
	// An order brings a churned customer back.
	f.handle(t, f.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{
		Id: uuid.NewString(), CustomerId: customer, Total: eur(10, 0), CreateTime: timestamppb.New(clock),
	}}), customer))
	if lc := f.stage(t, customer); lc.GetStage() != repeat {
		t.Fatalf("after an order a churned customer is %v, want REPEAT_CUSTOMER", lc.GetStage())
	}
}

// ladderStep is one event of a ladder sequence, built for a customer.
type ladderStep func(f *reactionFixture, t *testing.T, customer string, ids map[string]string) *eventv1.Event

func orderStep(name string) ladderStep {
	return func(f *reactionFixture, t *testing.T, customer string, ids map[string]string) *eventv1.Event {
		return f.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{
			Id: ids[name], CustomerId: customer, Total: eur(10, 0)}}), customer)
	}
}

func subscriptionStep(typ eventv1.Type[*productv1.SubscriptionChanged], name, order string, status productv1.SubscriptionStatus) ladderStep {
	return func(f *reactionFixture, t *testing.T, customer string, ids map[string]string) *eventv1.Event {
		return f.publish(t, typ.Of(&productv1.SubscriptionChanged{CustomerId: customer, Subscription: &productv1.Subscription{
			Id: ids[name], CustomerId: customer, OrderId: ids[order], Status: status,
			BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_MONTHLY}}), customer)
	}
}

func npsStep(score int32) ladderStep {
	return func(f *reactionFixture, t *testing.T, customer string, _ map[string]string) *eventv1.Event {
		return f.publish(t, supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{CustomerId: customer, Score: score}), customer)
	}
}

// permutations calls visit with every order of 0..n-1 (Heap's algorithm).
func permutations(n int, visit func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var gen func(k int)
	gen = func(k int) {
		if k <= 1 {
			visit(slices.Clone(p))
			return
		}
		for i := range k {
			gen(k - 1)
			if k%2 == 0 {
				p[i], p[k-1] = p[k-1], p[i]
			} else {
				p[0], p[k-1] = p[k-1], p[0]
			}
		}
	}
	gen(n)
}

// TestEveryInterleavingReachesTheSameStage delivers the events of each sequence to marketing's
// handlers (real Redis) in every order, each order for a customer of its own, and checks that
// all reach the stage the sequence's facts give (worked out by hand, independently of the code),
// and take the same way through the funnel: every first purchase passes FIRST_TIME_CUSTOMER
// (PROSPECT -> FIRST_TIME_CUSTOMER, never PROSPECT -> CLIENT when the subscription's event comes
// first), and where the sequence has one path whatever the order, the history and the funnel's
// counters are that path. The six-event sequence has 720 orders, each run.
func TestEveryInterleavingReachesTheSameStage(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	active, canceled := productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_CANCELED
	activated, renewed, ended := productv1.EventSubscriptionActivated, productv1.EventSubscriptionRenewed, productv1.EventSubscriptionCanceled
	for _, seq := range []struct {
		name  string
		steps []ladderStep
		want  marketing.Stage
		// path is the stages the history enters, when it is the same in every order.
		path []marketing.Stage
	}{
		{"one order", []ladderStep{orderStep("a")}, first, []marketing.Stage{prospect, first}},
		{"two orders", []ladderStep{orderStep("a"), orderStep("b")}, repeat, []marketing.Stage{prospect, first, repeat}},
		{"recurring", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active)}, client, []marketing.Stage{prospect, first, client}},
		{"recurring renewed", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active), subscriptionStep(renewed, "s", "a", active)},
			client, []marketing.Stage{prospect, first, client}},
		{"one order, promoter", []ladderStep{orderStep("a"), npsStep(10)}, advocate, []marketing.Stage{prospect, first, advocate}},
		{"canceled", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active), subscriptionStep(ended, "s", "a", canceled)}, first, nil},
		{"mixed promoter", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active), orderStep("b"), npsStep(10)}, advocate, nil},
		{"canceled then ordered", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active),
			subscriptionStep(ended, "s", "a", canceled), orderStep("b"), npsStep(7)}, repeat, nil},
		{"two subscriptions, one left", []ladderStep{orderStep("a"), subscriptionStep(activated, "s", "a", active), orderStep("b"),
			subscriptionStep(activated, "t", "b", active), subscriptionStep(ended, "s", "a", canceled), npsStep(3)}, client, nil},
	} {
		t.Run(seq.name, func(t *testing.T) {
			permutations(len(seq.steps), func(order []int) {
				// The subtests run one at a time on the fixture's tenant: the funnel's change over
				// one order is this customer's way.
				before, err := f.store.FunnelCounters(ctx, f.tenant)
				if err != nil {
					t.Fatal(err)
				}
				customer := f.capture(t, uuid.NewString()+"@example.com", "", "").GetCustomerId()
				ids := map[string]string{}
				for _, name := range []string{"a", "b", "s", "t"} {
					ids[name] = uuid.NewString()
				}
				for _, i := range order {
					f.handle(t, seq.steps[i](f, t, customer, ids))
				}
				lc := f.stage(t, customer)
				if got := lc.GetStage(); got != seq.want {
					t.Fatalf("events in order %v: %v, want %v", order, got, seq.want)
				}
				after, err := f.store.FunnelCounters(ctx, f.tenant)
				if err != nil {
					t.Fatal(err)
				}
				delta := func(field string) int64 { return after[field] - before[field] }
				var path []marketing.Stage
				for _, m := range lc.GetHistory() {
					path = append(path, m.GetTo())
				}
				if len(path) < 2 || path[0] != prospect || path[1] != first {
					t.Fatalf("events in order %v: history %v, want it through PROSPECT then FIRST_TIME_CUSTOMER", order, path)
				}
				for field := range after {
					if rest, ok := strings.CutPrefix(field, "moved:PROSPECT:"); ok && delta(field) != 0 && rest != "FIRST_TIME_CUSTOMER" {
						t.Fatalf("events in order %v: the funnel counts %d %s", order, delta(field), field)
					}
				}
				if d := delta("moved:PROSPECT:FIRST_TIME_CUSTOMER"); d != 1 {
					t.Fatalf("events in order %v: the funnel counts %d moves PROSPECT -> FIRST_TIME_CUSTOMER, want 1", order, d)
				}
				if seq.path == nil {
					return
				}
				if !slices.Equal(path, seq.path) {
					t.Fatalf("events in order %v: history %v, want %v", order, path, seq.path)
				}
				for i, s := range seq.path {
					if d := delta("entered:" + s.String()[len("LIFECYCLE_STAGE_"):]); d != 1 {
						t.Fatalf("events in order %v: the funnel counts %d entries into %v, want 1", order, d, s)
					}
					if i > 0 {
						from, to := seq.path[i-1].String()[len("LIFECYCLE_STAGE_"):], s.String()[len("LIFECYCLE_STAGE_"):]
						if d := delta("moved:" + from + ":" + to); d != 1 {
							t.Fatalf("events in order %v: the funnel counts %d moves %s -> %s, want 1", order, d, from, to)
						}
					}
				}
			})
		})
	}
}

// A merge's reaction that arrives after the person was erased (the erasure took the merged
// customer's records with the survivor's) writes nothing: no lifecycle comes back for the erased
// survivor.
func TestMergeReactionAfterTheErasure(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	customers := marketing.NewCustomers(f.store, events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}, time.Now)
	x, y := f.capture(t, "x@example.com", "", ""), f.capture(t, "y@example.com", "", "")
	if _, err := customers.Merge(ctx, f.tenant, x.GetCustomerId(), y.GetCustomerId()); err != nil {
		t.Fatal(err)
	}
	if err := f.leads.Erase(ctx, f.tenant, y.GetId(), ""); err != nil {
		t.Fatal(err)
	}
	ev := f.publish(t, marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{
		SurvivorCustomerId: x.GetCustomerId(), MergedCustomerId: y.GetCustomerId()}), x.GetCustomerId())
	before := f.snapshot(t)
	f.handle(t, ev)
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Fatalf("the merge's reaction after the erasure wrote (-before +after):\n%s", diff)
	}
	for _, c := range []string{x.GetCustomerId(), y.GetCustomerId()} {
		if _, err := f.lifecycle.Get(ctx, f.tenant, c); !errors.Is(err, marketing.ErrLifecycleNotFound) {
			t.Fatalf("lifecycle of erased customer %s: %v, want ErrLifecycleNotFound", c, err)
		}
	}
}
