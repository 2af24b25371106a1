package events

import (
	"context"

	"github.com/google/uuid"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Cause is who or what made a change and under which request: what Envelope records as the
// event's actor and request id. The platform puts it in the context (the gRPC server from the
// call's credential and request id, the consumer from the event it hands a handler, a sweep runner
// from its name), so every event says who acted without a handler stating it.
type Cause struct {
	Actor     *eventv1.Actor
	RequestID string
	// Method is the gRPC method of the call; empty for reactions and sweeps.
	Method string
}

type causeKey struct{}

// WithCause returns ctx carrying c.
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

// CauseFrom returns the cause in ctx; the zero Cause when there is none.
func CauseFrom(ctx context.Context) Cause {
	c, _ := ctx.Value(causeKey{}).(Cause)
	return c
}

// ByKey is the cause of a call of method authenticated with API key keyID.
func ByKey(keyID, requestID, method string) Cause {
	return Cause{Actor: &eventv1.Actor{Kind: &eventv1.Actor_ApiKeyId{ApiKeyId: keyID}}, RequestID: requestID, Method: method}
}

// ByEvent is the cause of a reaction to ev: the event is the actor, and its request id carries on.
func ByEvent(ev *eventv1.Event) Cause {
	return Cause{Actor: &eventv1.Actor{Kind: &eventv1.Actor_EventId{EventId: ev.GetId()}}, RequestID: ev.GetRequestId()}
}

// BySweep is the cause of one round of the background sweep name, with a request id of its own
// so the round's changes can be told apart.
func BySweep(name string) Cause {
	return Cause{Actor: &eventv1.Actor{Kind: &eventv1.Actor_Sweep{Sweep: name}}, RequestID: uuid.Must(uuid.NewV7()).String()}
}

// ByOperator is the cause of a change an operator makes outside the API with tool ("cli": crm
// admin), with a request id of its own.
func ByOperator(tool string) Cause {
	return Cause{Actor: &eventv1.Actor{Kind: &eventv1.Actor_Operator{Operator: tool}}, RequestID: uuid.Must(uuid.NewV7()).String()}
}
