package marketing_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// TestASuspectBecomesAProspectWhenEngaged: people imported or subscribed by consent only enter as
// SUSPECTs and stay so until captured or engaged as a lead, which moves them to PROSPECT (a fact,
// recorded once however often delivered); with an order the facts make a customer whichever event
// comes first.
func TestASuspectBecomesAProspectWhenEngaged(t *testing.T) {
	f := newReactionFixture(t)
	ctx := context.Background()
	customers := marketing.NewCustomers(f.store, events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}, time.Now)
	suspect := func(origin marketingv1.CustomerOrigin) string {
		r, err := customers.Resolve(ctx, f.tenant, marketing.ResolveRequest{Email: uuid.NewString() + "@example.com", Create: true, Origin: origin})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.stage(t, r.GetCustomerId()).GetStage(); got != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
			t.Fatalf("registered by %v: %v, want SUSPECT", origin, got)
		}
		return r.GetCustomerId()
	}
	captured := func(c string) *eventv1.Event {
		return f.publish(t, marketingv1.EventLeadCaptured.Of(&marketingv1.LeadCaptured{LeadId: uuid.NewString(), CustomerId: c}), c)
	}
	engaged := func(c string) *eventv1.Event {
		return f.publish(t, marketingv1.EventLeadEngaged.Of(&marketingv1.LeadEngaged{LeadId: uuid.NewString(), CustomerId: c}), c)
	}
	order := func(c string) *eventv1.Event {
		return f.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: uuid.NewString(), CustomerId: c, Total: eur(10, 0)}}), c)
	}

	idle := suspect(marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT)
	f.deliverTwice(t, order(suspect(marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CONSENT))) // another person's order
	// The import's own capture event is a record brought in, not an engagement.
	f.deliverTwice(t, f.publish(t, marketingv1.EventLeadCaptured.Of(&marketingv1.LeadCaptured{LeadId: uuid.NewString(), CustomerId: idle, Created: true, Imported: true}), idle))
	if got := f.stage(t, idle).GetStage(); got != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
		t.Errorf("an imported person nobody engaged: %v, want SUSPECT", got)
	}
	for _, tt := range []struct {
		name   string
		origin marketingv1.CustomerOrigin
		events func(c string) []*eventv1.Event
		want   marketingv1.LifecycleStage
	}{
		{"imported, then captured", marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT,
			func(c string) []*eventv1.Event { return []*eventv1.Event{captured(c)} }, marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT},
		{"consent only, then engaged", marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CONSENT,
			func(c string) []*eventv1.Event { return []*eventv1.Event{engaged(c)} }, marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT},
		{"captured, then an order", marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT,
			func(c string) []*eventv1.Event { return []*eventv1.Event{captured(c), order(c)} }, marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER},
		{"an order, then captured", marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT,
			func(c string) []*eventv1.Event { return []*eventv1.Event{order(c), captured(c)} }, marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER},
	} {
		c := suspect(tt.origin)
		for _, ev := range tt.events(c) {
			f.deliverTwice(t, ev)
		}
		lc := f.stage(t, c)
		if lc.GetStage() != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, lc.GetStage(), tt.want)
		}
		if tt.want == marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT &&
			(len(lc.GetHistory()) != 2 || lc.GetHistory()[1].GetFrom() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT) {
			t.Errorf("%s: history %v, want SUSPECT then PROSPECT once", tt.name, lc.GetHistory())
		}
	}
}

// TestACapturedPersonEntersTheLifecycleOnce: a capture that registers the person enters them as a
// PROSPECT in its own commit, with the captured event as the entry's cause and no redelivery
// marker; its captured event says so, costs its reaction no round trip, and delivered and
// redelivered changes nothing.
func TestACapturedPersonEntersTheLifecycleOnce(t *testing.T) {
	f := newReactionFixture(t)
	lead := f.capture(t, "once@example.com", "", "")
	captured := f.events(t, marketingv1.EventLeadCaptured.Name)
	if len(captured) != 1 {
		t.Fatalf("%d captured events, want 1", len(captured))
	}
	lc := f.stage(t, lead.GetCustomerId())
	if lc.GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT || len(lc.GetHistory()) != 1 ||
		lc.GetHistory()[0].GetCauseEventId() != captured[0].GetId() {
		t.Fatalf("lifecycle after the capture: %v, want PROSPECT with one entry caused by %s", lc, captured[0].GetId())
	}
	seen, err := f.rdb.Keys(context.Background(), f.keys.Scope("marketing", f.tenant).Key("seen", "*")).Result()
	if err != nil || len(seen) != 0 {
		t.Fatalf("redelivery markers after the capture: %v, %v; want none", seen, err)
	}
	p := &marketingv1.LeadCaptured{}
	if err := captured[0].GetPayload().UnmarshalTo(p); err != nil || !p.GetRegistered() {
		t.Fatalf("captured event %v (%v): want registered", p, err)
	}
	before := f.snapshot(t)
	commands := &redistest.Commands{}
	f.rdb.AddHook(commands)
	f.handle(t, captured[0])
	if n := commands.Trips(); n != 0 {
		t.Errorf("the reaction to a registering capture made %d round trips (%v), want 0", n, commands.Take())
	}
	f.deliverTwice(t, captured[0])
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Fatalf("the capture's own event changed marketing's data (-before +after):\n%s", diff)
	}
}
