package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func publisher() events.Publisher {
	return events.Publisher{
		Producer:   "marketing",
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

func TestEnvelope(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sampled, span := tp.Tracer("test").Start(context.Background(), "CaptureLead")
	defer span.End()
	unsampledTP := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	unsampled, span2 := unsampledTP.Tracer("test").Start(context.Background(), "CaptureLead")
	defer span2.End()
	ts, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	withState := trace.ContextWithSpanContext(context.Background(),
		span.SpanContext().WithTraceState(ts))

	tests := []struct {
		name           string
		ctx            context.Context
		wantTrace      trace.SpanContext // invalid: no traceparent
		wantFlags      string
		wantTracestate string
	}{
		{name: "sampled span", ctx: sampled, wantTrace: span.SpanContext(), wantFlags: "01"},
		{name: "unsampled span", ctx: unsampled, wantTrace: span2.SpanContext(), wantFlags: "00"},
		{name: "trace state", ctx: withState, wantTrace: span.SpanContext(), wantFlags: "01", wantTracestate: "vendor=abc"},
		{name: "no span", ctx: context.Background()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
			payload := &marketingv1.LeadCaptured{
				LeadId: "0190a1b2-0000-7000-8000-000000000001", CustomerId: "cust-1", Created: true,
				Touch: &marketingv1.Touch{CampaignId: "0190a1b2-0000-7000-8000-000000000002"},
			}
			ev, data, err := publisher().Envelope(tt.ctx, marketingv1.EventLeadCaptured.Of(payload), "acme", "cust-1", at)
			if err != nil {
				t.Fatalf("Envelope: %v", err)
			}

			if tt.wantTrace.IsValid() {
				want := "00-" + tt.wantTrace.TraceID().String() + "-" + tt.wantTrace.SpanID().String() + "-" + tt.wantFlags
				if ev.GetTraceparent() != want {
					t.Errorf("traceparent: got %q, want %q", ev.GetTraceparent(), want)
				}
			} else if ev.GetTraceparent() != "" {
				t.Errorf("traceparent without a span: got %q, want empty", ev.GetTraceparent())
			}
			if ev.GetTracestate() != tt.wantTracestate {
				t.Errorf("tracestate: got %q, want %q", ev.GetTracestate(), tt.wantTracestate)
			}

			// The carried context is one a consumer can continue (and link to).
			carried := publisher().Propagator.Extract(context.Background(),
				propagation.MapCarrier{"traceparent": ev.GetTraceparent(), "tracestate": ev.GetTracestate()})
			if got := trace.SpanContextFromContext(carried); got.TraceID() != tt.wantTrace.TraceID() || got.SpanID() != tt.wantTrace.SpanID() {
				t.Errorf("extracted span context: got %v/%v, want %v/%v", got.TraceID(), got.SpanID(), tt.wantTrace.TraceID(), tt.wantTrace.SpanID())
			}

			id, err := uuid.Parse(ev.GetId())
			if err != nil {
				t.Fatalf("id %q: %v", ev.GetId(), err)
			}
			if id.Version() != 7 {
				t.Errorf("id version: got %d, want 7", id.Version())
			}

			want := &eventv1.Event{
				Id:           ev.GetId(),
				Type:         "marketing.lead.captured",
				TenantId:     "acme",
				CustomerId:   "cust-1",
				OccurredTime: timestamppb.New(at),
				Producer:     "marketing",
				Traceparent:  ev.GetTraceparent(),
				Tracestate:   ev.GetTracestate(),
				Payload:      ev.GetPayload(),
			}
			if diff := cmp.Diff(want, ev, protocmp.Transform()); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}

			decoded, err := events.Decode(data)
			if err != nil {
				t.Fatalf("decode the stored form: %v", err)
			}
			if diff := cmp.Diff(ev, decoded, protocmp.Transform()); diff != "" {
				t.Errorf("wire form (-envelope +decoded):\n%s", diff)
			}
			if got, want := decoded.GetPayload().GetTypeUrl(), "type.googleapis.com/crm.marketing.v1.LeadCaptured"; got != want {
				t.Errorf("payload type: got %q, want %q", got, want)
			}
			gotPayload := &marketingv1.LeadCaptured{}
			if err := decoded.GetPayload().UnmarshalTo(gotPayload); err != nil {
				t.Fatalf("payload: %v", err)
			}
			if diff := cmp.Diff(payload, gotPayload, protocmp.Transform()); diff != "" {
				t.Errorf("payload (-sent +received):\n%s", diff)
			}
		})
	}
}

func TestEnvelopeIDsAreUniqueAndTimeOrdered(t *testing.T) {
	ctx := context.Background()
	var prev string
	for i := range 1000 {
		ev, _, err := publisher().Envelope(ctx, marketingv1.EventLeadCaptured.Of(&marketingv1.LeadCaptured{}), "acme", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Compare(ev.GetId(), prev) <= 0 {
			t.Fatalf("id #%d: got %q after %q, want strictly increasing", i, ev.GetId(), prev)
		}
		prev = ev.GetId()
	}
}

func TestEnvelopeNilPayload(t *testing.T) {
	for name, body := range map[string]eventv1.Body{
		"zero body":   {},
		"nil message": marketingv1.EventLeadCaptured.Of(nil),
	} {
		if _, _, err := publisher().Envelope(context.Background(), body, "acme", "", time.Now()); err == nil {
			t.Errorf("Envelope with %s: got no error, want one", name)
		}
	}
}
