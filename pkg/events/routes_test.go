package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Two types that share a payload, as product's subscription events share SubscriptionChanged, and
// one of another producer.
var (
	thingCreated = eventv1.Type[*wrapperspb.StringValue]{Name: "alpha.thing.created"}
	thingDeleted = eventv1.Type[*wrapperspb.StringValue]{Name: "alpha.thing.deleted"}
	otherCounted = eventv1.Type[*wrapperspb.Int64Value]{Name: "beta.other.counted"}
)

func envelope(t *testing.T, body eventv1.Body) *eventv1.Event {
	t.Helper()
	ev, _, err := events.Publisher{Producer: "alpha", Propagator: propagation.TraceContext{}}.
		Envelope(context.Background(), body, "acme", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSubscribeRoutesByTypeName(t *testing.T) {
	type call struct{ Route, Value string }
	var calls []call
	subs := events.Subscribe("reactor",
		events.On(thingCreated, func(_ context.Context, _ *eventv1.Event, p *wrapperspb.StringValue) error {
			calls = append(calls, call{"created", p.GetValue()})
			return nil
		}),
		events.On(thingDeleted, func(_ context.Context, _ *eventv1.Event, p *wrapperspb.StringValue) error {
			calls = append(calls, call{"deleted", p.GetValue()})
			return nil
		}),
		events.On(otherCounted, func(_ context.Context, _ *eventv1.Event, p *wrapperspb.Int64Value) error {
			calls = append(calls, call{"counted", "n"})
			return nil
		}),
	)

	gotProducers := make([]string, len(subs))
	for i, s := range subs {
		gotProducers[i] = s.Producer
		if s.Group != "reactor" {
			t.Errorf("subscription %d group: got %q, want %q", i, s.Group, "reactor")
		}
	}
	if diff := cmp.Diff([]string{"alpha", "beta"}, gotProducers); diff != "" {
		t.Errorf("producers (-want +got):\n%s", diff)
	}

	handle := subs[0].Handle
	unknown := eventv1.Type[*wrapperspb.StringValue]{Name: "alpha.thing.archived"}
	for _, body := range []eventv1.Body{
		thingDeleted.Of(wrapperspb.String("b")),
		unknown.Of(wrapperspb.String("skipped")),
		thingCreated.Of(wrapperspb.String("a")),
		otherCounted.Of(wrapperspb.Int64(1)),
	} {
		if err := handle(context.Background(), envelope(t, body)); err != nil {
			t.Errorf("%s: got %v, want no error", body.Type(), err)
		}
	}
	want := []call{{"deleted", "b"}, {"created", "a"}, {"counted", "n"}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestOnPassesTheDecodedPayloadAndTheHandlersError(t *testing.T) {
	failed := errors.New("try again")
	var got *wrapperspb.StringValue
	handle := events.Subscribe("reactor", events.On(thingCreated,
		func(_ context.Context, ev *eventv1.Event, p *wrapperspb.StringValue) error {
			got = p
			return failed
		}))[0].Handle
	err := handle(context.Background(), envelope(t, thingCreated.Of(wrapperspb.String("a"))))
	if !errors.Is(err, failed) {
		t.Errorf("error: got %v, want %v", err, failed)
	}
	if diff := cmp.Diff(wrapperspb.String("a"), got, protocmp.Transform()); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}

func TestOnRefusesAPayloadOfAnotherMessage(t *testing.T) {
	called := false
	handle := events.Subscribe("reactor", events.On(thingCreated,
		func(context.Context, *eventv1.Event, *wrapperspb.StringValue) error {
			called = true
			return nil
		}))[0].Handle
	ev := envelope(t, thingCreated.Of(wrapperspb.String("a")))
	wrong, err := anypb.New(wrapperspb.Int64(7))
	if err != nil {
		t.Fatal(err)
	}
	ev.Payload = wrong
	if err := handle(context.Background(), ev); err == nil {
		t.Errorf("a payload of another message: got no error, want one")
	}
	if called {
		t.Errorf("the handler was called with a payload that does not decode")
	}
}

func TestSubscribeRefusesTwoRoutesOfOneType(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("two routes of %s: got no panic, want one", thingCreated.Name)
		}
	}()
	noop := func(context.Context, *eventv1.Event, *wrapperspb.StringValue) error { return nil }
	events.Subscribe("reactor", events.On(thingCreated, noop), events.On(thingCreated, noop))
}
