package events_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func anyOf(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// captureEvent is an event as a CaptureLead writes it (the bench's), in full form.
func captureEvent(t testing.TB) *eventv1.Event {
	id := func() string { return uuid.Must(uuid.NewV7()).String() }
	customer := id()
	return &eventv1.Event{
		Id: id(), Type: "marketing.lead.captured", TenantId: "dev", CustomerId: customer,
		OccurredTime: timestamppb.New(time.Date(2026, 12, 5, 17, 0, 0, 497280231, time.UTC)), Producer: "marketing",
		Payload: anyOf(t, &marketingv1.LeadCaptured{LeadId: id(), Created: true, CustomerId: customer,
			Touch: &marketingv1.Touch{CampaignId: id()}}),
		Actor:     &eventv1.Actor{Kind: &eventv1.Actor_ApiKeyId{ApiKeyId: id()}},
		RequestId: id(), Method: "/crm.marketing.v1.MarketingService/CaptureLead",
	}
}

// Whatever an envelope holds, Decode(Encode(ev)) is ev; an entry stored in full (before the
// compact form) decodes as it was.
func TestStoredFormRoundTrips(t *testing.T) {
	full := captureEvent(t)
	cases := map[string]func(*eventv1.Event){
		"a capture":             func(*eventv1.Event) {},
		"sampled trace context": func(ev *eventv1.Event) { ev.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
		"unsampled with a state": func(ev *eventv1.Event) {
			ev.Traceparent, ev.Tracestate = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "v=1"
		},
		"unknown traceparent": func(ev *eventv1.Event) {
			ev.Traceparent = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
		},
		"upper-case trace":      func(ev *eventv1.Event) { ev.Traceparent = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01" },
		"ids that are no UUIDs": func(ev *eventv1.Event) { ev.Id, ev.CustomerId, ev.RequestId = "evt-1", "cust-1", "req 1" },
		"upper-case UUID":       func(ev *eventv1.Event) { ev.CustomerId = "0190A1B2-0000-7000-8000-00000000000A" },
		"UUID without hyphens":  func(ev *eventv1.Event) { ev.RequestId = "0190a1b2000070008000000000000001" },
		"dev key actor":         func(ev *eventv1.Event) { ev.Actor = &eventv1.Actor{Kind: &eventv1.Actor_ApiKeyId{ApiKeyId: "dev"}} },
		"event actor": func(ev *eventv1.Event) {
			ev.Actor = &eventv1.Actor{Kind: &eventv1.Actor_EventId{EventId: full.GetId()}}
		},
		"sweep actor, no method": func(ev *eventv1.Event) {
			ev.Actor, ev.Method = &eventv1.Actor{Kind: &eventv1.Actor_Sweep{Sweep: "support.sla"}}, ""
		},
		"another service's method": func(ev *eventv1.Event) {
			ev.Method = "/crm.sales.v1.SalesService/WinOpportunity"
		},
		"payload of another package": func(ev *eventv1.Event) { ev.Payload = anyOf(t, wrapperspb.String("x")) },
		"producer not in the type":   func(ev *eventv1.Event) { ev.Producer = "bench" },
		"no payload, no customer":    func(ev *eventv1.Event) { ev.Payload, ev.CustomerId = nil, "" },
		"a type without a dot": func(ev *eventv1.Event) {
			ev.Type, ev.Producer, ev.Method = "odd", "odd", "/crm.odd.v1.OddService/Do"
		},
		"payload about another customer": func(ev *eventv1.Event) {
			ev.Payload = anyOf(t, &marketingv1.LeadCaptured{LeadId: "not-a-uuid", CustomerId: uuid.NewString()})
		},
		"payload ids nested, and in upper case": func(ev *eventv1.Event) {
			ev.Type = "marketing.lifecycle.stage_changed"
			ev.Payload = anyOf(t, &marketingv1.LifecycleStageChanged{CustomerId: ev.GetCustomerId(), Move: &marketingv1.StageMove{
				To: marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT, Cause: "marketing.lead.captured", CauseEventId: full.GetId(),
				Time: timestamppb.Now()}})
			ev.Payload.Value = append(ev.Payload.Value, anyOf(t, &marketingv1.LifecycleStageChanged{CustomerId: strings.ToUpper(full.GetId())}).Value...)
		},
		"payload customer but no envelope customer": func(ev *eventv1.Event) { ev.CustomerId = "" },
		"payload customer not a UUID": func(ev *eventv1.Event) {
			ev.CustomerId = "cust-1"
			ev.Payload = anyOf(t, &marketingv1.CustomerChanged{CustomerId: "cust-1"})
		},
		"payload of a type not linked in": func(ev *eventv1.Event) {
			ev.Payload = &anypb.Any{TypeUrl: "type.googleapis.com/crm.marketing.v1.Unknown", Value: ev.GetPayload().GetValue()}
		},
		"payload that does not parse": func(ev *eventv1.Event) { ev.Payload.Value = []byte{0x0a, 0x7f, 'x'} },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			ev := proto.CloneOf(full)
			change(ev)
			data, err := events.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, got, protocmp.Transform()); diff != "" {
				t.Errorf("Decode(Encode(ev)) (-ev +decoded):\n%s", diff)
			}
			if !bytes.Equal(ev.GetPayload().GetValue(), got.GetPayload().GetValue()) {
				t.Errorf("payload bytes: wrote %x, decoded %x", ev.GetPayload().GetValue(), got.GetPayload().GetValue())
			}
			old, _ := proto.Marshal(ev)
			got, err = events.Decode(old)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, got, protocmp.Transform()); diff != "" {
				t.Errorf("an entry stored in full (-ev +decoded):\n%s", diff)
			}
		})
	}
}

// The reason for the compact form, measured: MEMORY USAGE per entry of a stream of capture events
// stored in full and compact.
func TestStoredFormIsSmaller(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	tag := redistest.Tenant(t)
	const n = 2000
	size := map[string]int{}
	for _, form := range []string{"full", "compact"} {
		stream := fmt.Sprintf("crm:{%s}:%s", tag, form)
		bytes := 0
		for range n {
			ev := captureEvent(t)
			data, err := proto.Marshal(ev)
			if form == "compact" {
				data, err = events.Encode(ev)
			}
			if err != nil {
				t.Fatal(err)
			}
			bytes += len(data)
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"e", data}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		size[form] = int(rdb.MemoryUsage(ctx, stream, 0).Val()) / n
		t.Logf("%s: %d B encoded, MEMORY USAGE %d B per event", form, bytes/n, size[form])
	}
	if size["compact"] > size["full"]-100 {
		t.Errorf("compact %d B, full %d B per event: want at least 100 B saved", size["compact"], size["full"])
	}
}

// A payload's ids are stored as their 16 bytes and its copy of the envelope's customer id not at
// all: a capture's event is smaller by about that than the same bytes under a payload type this
// binary does not know (the name is as long, so the rest of the entry is the same size).
func TestPayloadIdsAreStoredAsBytes(t *testing.T) {
	ev := captureEvent(t) // lead id and touch campaign id, and the customer id of the envelope
	unknown := proto.CloneOf(ev)
	unknown.Payload.TypeUrl = "type.googleapis.com/crm.marketing.v1.LeadCapturex"
	compact, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	asIs, err := events.Encode(unknown)
	if err != nil {
		t.Fatal(err)
	}
	// 2 x (36 - 16) for the ids, 36 for the customer id, less the two lists naming them (a 2-byte
	// tag, a length, then 2 and 1 numbers); a length prefix may be a byte shorter too.
	if want, saved := 2*20+36-(3+2)-(3+1), len(asIs)-len(compact); saved < want || saved > want+2 {
		t.Errorf("stored capture event: %d B, %d B with its payload as it is: %d B saved, want %d (+2)", len(compact), len(asIs), saved, want)
	}
}

// The consumer decodes a stream entry's bytes in place (no copy of the string go-redis read):
// Decode must neither write to them nor keep them, so the event stays the same when the buffer
// is reused afterwards.
func TestDecodeKeepsNothingOfItsInput(t *testing.T) {
	ev := captureEvent(t)
	ev.Traceparent, ev.Tracestate = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "v=1"
	ev.Payload.Value = append(ev.Payload.Value, 0x9a, 0x06, 0x03, 'x', 'y', 'z') // an unknown field kept as it is
	data, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	stored := bytes.Clone(data)
	got, err := events.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, stored) {
		t.Fatal("Decode wrote to its input")
	}
	want := proto.Clone(got)
	for i := range data {
		data[i] = 0xff
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Fatalf("the event changed with its input's buffer (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(ev, got, protocmp.Transform()); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
}

// BenchmarkDecode decodes a capture's stored event with a sampled trace context, as each group
// that handles it does.
//
//	cd pkg && go test -run '^$' -bench Decode -benchmem ./events/
func BenchmarkDecode(b *testing.B) {
	ev := captureEvent(b)
	ev.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	data, err := events.Encode(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
