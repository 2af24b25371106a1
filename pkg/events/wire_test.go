package events_test

import (
	"context"
	"fmt"
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

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// captureEvent is an event as a CaptureLead writes it (the bench's), in full form.
func captureEvent(t *testing.T) *eventv1.Event {
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
