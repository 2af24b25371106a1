package redisconn

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracingHook makes a client span per command and per pipeline, with the names and attributes
// redisotel's tracing hook gives them, but only under a span that records: a call or event handler
// that is not sampled (or not traced at all) pays nothing per command. redisotel's hook builds its
// attributes and options for every command, and for every pipeline formats all of its commands'
// arguments into a string (even with db.statement off) before asking the tracer: that was 15 % of
// crm's allocations under CaptureLead load, for spans nobody samples.
type tracingHook struct {
	tracer trace.Tracer
	opts   []trace.SpanStartOption
}

var _ redis.Hook = tracingHook{}

// instrumentTracing adds the tracing hook to every node client of rdb.
func instrumentTracing(rdb redis.UniversalClient, tp trace.TracerProvider) {
	hook := func(c *redis.Client) {
		opts := c.Options()
		c.AddHook(newTracingHook(tp, opts.Network, opts.Addr))
	}
	switch rdb := rdb.(type) {
	case *redis.Client:
		hook(rdb)
	case *redis.ClusterClient:
		rdb.OnNewNode(hook)
	}
}

func newTracingHook(tp trace.TracerProvider, network, addr string) tracingHook {
	attrs := []attribute.KeyValue{attribute.String("db.system", "redis")}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	if network == "tcp" {
		network = "redis"
	}
	attrs = append(attrs, attribute.String("db.connection_string", network+"://"+addr))
	return tracingHook{
		tracer: tp.Tracer("github.com/redis/go-redis/extra/redisotel",
			trace.WithInstrumentationVersion("semver:"+redis.Version())),
		opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)},
	}
}

// sampled reports whether ctx's span records: only then are a command's spans made.
func sampled(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

func (h tracingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !sampled(ctx) {
			return next(ctx, network, addr)
		}
		ctx, span := h.tracer.Start(ctx, "redis.dial", h.opts...)
		defer span.End()
		conn, err := next(ctx, network, addr)
		recordError(span, err)
		return conn, err
	}
}

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !sampled(ctx) || secret(cmd) {
			return next(ctx, cmd)
		}
		ctx, span := h.tracer.Start(ctx, cmd.FullName(), h.opts...)
		defer span.End()
		err := next(ctx, cmd)
		recordError(span, err)
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !sampled(ctx) {
			return next(ctx, cmds)
		}
		for _, cmd := range cmds {
			if secret(cmd) {
				return next(ctx, cmds)
			}
		}
		opts := append(h.opts[:len(h.opts):len(h.opts)], trace.WithAttributes(attribute.Int("db.redis.num_cmd", len(cmds))))
		ctx, span := h.tracer.Start(ctx, "redis.pipeline "+pipelineSummary(cmds), opts...)
		defer span.End()
		err := next(ctx, cmds)
		recordError(span, err)
		return err
	}
}

// pipelineSummary names a pipeline by its distinct commands, at most 10, in order of appearance.
func pipelineSummary(cmds []redis.Cmder) string {
	names := make([]string, 0, 4)
	for _, cmd := range cmds {
		if len(names) == 10 {
			break
		}
		name := cmd.FullName()
		seen := false
		for _, n := range names {
			seen = seen || n == name
		}
		if !seen {
			names = append(names, name)
		}
	}
	return strings.Join(names, " ")
}

// secret reports the commands that carry a password (AUTH, HELLO ... AUTH): never traced.
func secret(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "auth":
		return true
	case "hello":
		args := cmd.Args()
		if len(args) > 2 {
			s, ok := args[2].(string)
			return ok && strings.EqualFold(s, "auth")
		}
	}
	return false
}

func recordError(span trace.Span, err error) {
	if err != nil && err != redis.Nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
