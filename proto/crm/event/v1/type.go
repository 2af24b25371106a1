package eventv1

import "google.golang.org/protobuf/proto"

// Type is one event type of the bus: its name ("<service>.<resource>.<what happened>", the
// envelope's type) and, by its parameter, its payload message. Each producing service declares its
// types once, beside their payloads (events.go in its proto package), and producers and consumers
// both use that declaration. Several types may share a payload (four subscription events carry
// SubscriptionChanged), so the name, not the payload, says what happened.
//
// Hand-written, not generated: `make generate` deletes only *.pb.go and *.pb.gw.go files.
type Type[T proto.Message] struct {
	Name string
}

// Of pairs the type with its payload, which is what a producer publishes: a type cannot be sent
// with another type's payload.
func (t Type[T]) Of(payload T) Body {
	return Body{typ: t.Name, payload: payload}
}

// Body is a payload together with the type it is published as; Type.Of builds it.
type Body struct {
	typ     string
	payload proto.Message
}

// Type returns the event type name.
func (b Body) Type() string { return b.typ }

// Payload returns the payload message.
func (b Body) Payload() proto.Message { return b.payload }
