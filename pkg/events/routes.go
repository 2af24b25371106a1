package events

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Route is one typed handler; On builds it and Subscribe collects routes into subscriptions.
type Route struct {
	eventType string
	handle    Handler
}

// On routes the events of type t to handle with their payload decoded as t's message. A payload
// that does not decode is an error (the event is retried, then dead-lettered): its producer broke
// the contract.
func On[T proto.Message](t eventv1.Type[T], handle func(ctx context.Context, ev *eventv1.Event, payload T) error) Route {
	return Route{eventType: t.Name, handle: func(ctx context.Context, ev *eventv1.Event) error {
		var zero T
		payload := zero.ProtoReflect().Type().New().Interface().(T)
		if err := anypb.UnmarshalTo(ev.GetPayload(), payload, proto.UnmarshalOptions{}); err != nil {
			return fmt.Errorf("decode %s payload: %w", ev.GetType(), err)
		}
		return handle(ctx, ev, payload)
	}}
}

// Subscribe returns group's subscriptions to routes: one per producing service named by the
// routes' event types ("<producer>.<resource>.<what happened>"), in the order the routes first name
// them, each picking the handler by the event's type name and skipping (acknowledging) the types it
// has no route for. Two routes of one type are a wiring mistake and panic.
func Subscribe(group string, routes ...Route) []Subscription {
	byType := make(map[string]Handler, len(routes))
	var producers []string
	types := map[string][]string{} // producer → the types routed
	for _, r := range routes {
		if _, dup := byType[r.eventType]; dup {
			panic("events: two routes for " + r.eventType)
		}
		byType[r.eventType] = r.handle
		producer, _, _ := strings.Cut(r.eventType, ".")
		if !slices.Contains(producers, producer) {
			producers = append(producers, producer)
		}
		types[producer] = append(types[producer], r.eventType)
	}
	handle := func(ctx context.Context, ev *eventv1.Event) error {
		h, ok := byType[ev.GetType()]
		if !ok {
			return nil
		}
		return h(ctx, ev)
	}
	subs := make([]Subscription, 0, len(producers))
	for _, p := range producers {
		subs = append(subs, Subscription{Group: group, Producer: p, Handle: handle, Types: types[p]})
	}
	return subs
}
