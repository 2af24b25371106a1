package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// ChildSpansOnly wraps tp so that its tracers make spans only inside another span: work a request
// or an event handler does is traced under it, while idle work that nothing started (polling a
// stream, renewing a lease, pinging for health, a sweep finding nothing) makes no root spans to
// drown the request traces in.
func ChildSpansOnly(tp trace.TracerProvider) trace.TracerProvider {
	return childOnlyProvider{tp: tp}
}

type childOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // non-recording
	}
	return t.t.Start(ctx, name, opts...)
}
