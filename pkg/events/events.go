// Package events builds the envelope of every event on the bus (crm.event.v1.Event), carrying the
// W3C trace context of the request that made the change.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Publisher stamps envelopes for one producing service.
type Publisher struct {
	Producer   string
	Propagator propagation.TextMapPropagator
}

// Envelope wraps body (an event type and its payload, from the producer's declared types: see
// eventv1.Type) in an event and returns it with its stored form (Encode), ready to append to the
// producer's stream in the same atomic write as the change. The actor and request id come from the
// Cause in ctx, which the platform set.
func (p Publisher) Envelope(ctx context.Context, body eventv1.Body, tenantID, customerID string, at time.Time) (*eventv1.Event, []byte, error) {
	if m := body.Payload(); m == nil || !m.ProtoReflect().IsValid() {
		return nil, nil, fmt.Errorf("events: %q without a payload", body.Type())
	}
	payload, err := anypb.New(body.Payload())
	if err != nil {
		return nil, nil, fmt.Errorf("events: %w", err)
	}
	cause := CauseFrom(ctx)
	ev := &eventv1.Event{
		Id:           uuid.Must(uuid.NewV7()).String(),
		Type:         body.Type(),
		TenantId:     tenantID,
		CustomerId:   customerID,
		OccurredTime: timestamppb.New(at),
		Producer:     p.Producer,
		Payload:      payload,
		Actor:        cause.Actor,
		RequestId:    cause.RequestID,
		Method:       cause.Method,
	}
	p.Propagator.Inject(ctx, (*eventCarrier)(ev)) // the trace context straight into the envelope
	data, err := Encode(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("events: %w", err)
	}
	return ev, data, nil
}
