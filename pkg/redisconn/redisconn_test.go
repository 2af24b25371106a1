package redisconn_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestValidate(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{"redis://localhost:6379", false},
		{"rediss://user:pass@host:6380/2", false},
		{"redis+cluster://a:7000?addr=b:7001", false},
		{"redis+sentinel://s:26379?master_name=m", false},
		{"", true},
		{"localhost:6379", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := (&redisconn.Config{URL: tt.url, Partitions: 16}).Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate(%q): got %v, want error %v", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	free, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		url     string
		wantErr string // substring; "" for success
	}{
		{name: "standalone", url: redistest.URL()},
		{name: "standalone with a database", url: redistest.URL() + "/3"},
		{name: "nobody listening", url: "redis://127.0.0.1:" + strconv.Itoa(free), wantErr: "ping"},
		{name: "unknown scheme", url: "memcached://127.0.0.1:11211", wantErr: "unsupported URL scheme"},
		{name: "bad standalone URL", url: "redis://127.0.0.1:6379/notadb", wantErr: "redis:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: tt.url}, tp, noop.NewMeterProvider())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q): got %v, want an error containing %q", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			t.Cleanup(func() { _ = rdb.Close() })
			// The client is traced under the caller's span; a command outside any span (the
			// ping, idle work) makes none.
			key := "redisconn:test:" + redistest.Tenant(t)
			ctx, call := tp.Tracer("test").Start(context.Background(), "call")
			if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			call.End()
			if err := rdb.Get(context.Background(), key).Err(); err != nil {
				t.Fatalf("GET: %v", err)
			}
			var names []string
			for _, s := range spans.Ended() {
				if s.Name() != "call" {
					names = append(names, s.Name())
					if s.Parent().SpanID() != call.SpanContext().SpanID() {
						t.Errorf("Redis span %q outside the call's span", s.Name())
					}
				}
			}
			if len(names) != 1 {
				t.Errorf("Redis spans: got %v, want the SET's alone", names)
			}
		})
	}
}

// A named client's connections carry the name (CLIENT SETNAME), so CLIENT LIST tells the request
// path's connections from the event bus'.
func TestClientName(t *testing.T) {
	for _, name := range []string{"crm-bus", ""} {
		rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL(), ClientName: name},
			sdktrace.NewTracerProvider(), noop.NewMeterProvider())
		if err != nil {
			t.Fatal(err)
		}
		got, err := rdb.Do(context.Background(), "CLIENT", "GETNAME").Text()
		if name == "" && err != nil && err.Error() == "redis: nil" {
			got, err = "", nil
		}
		if err != nil || got != name {
			t.Errorf("CLIENT GETNAME: got %q, %v; want %q", got, err, name)
		}
		_ = rdb.Close()
	}
}

// A write whose reply times out is not sent again: the script may have run, and a second run would
// answer a spurious conflict or apply its effect twice. The script below counts its runs and keeps
// Redis busy past the read timeout.
func TestTimedOutWriteIsNotResent(t *testing.T) {
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL()}, sdktrace.NewTracerProvider(), noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	key := "redisconn:runs:" + redistest.Tenant(t)
	const slowWrite = `
redis.call('INCR', KEYS[1])
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 1300000
return 1`
	if err := rdb.Eval(context.Background(), slowWrite, []string{key}).Err(); err == nil {
		t.Fatal("the slow write answered within the read timeout; the test needs it to time out")
	}
	// The GET waits behind the script (Redis runs one command at a time), and behind a resent one
	// too if there were one.
	runs, err := rdb.Get(context.Background(), key).Int()
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Fatalf("the write ran %d times, want once", runs)
	}
}

// Spans are made under a sampled span only, with redisotel's names and attributes: a command is
// named after itself, a pipeline after its distinct commands; an error is recorded, a nil reply
// is not. Under a span that is not sampled, no Redis span is made.
func TestTracingFollowsSampling(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL()}, tp, noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	key := "redisconn:traced:" + redistest.Tenant(t)

	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true})) // flags 0: not sampled
	ctx, call := tp.Tracer("test").Start(unsampled, "unsampled call")
	if call.IsRecording() {
		t.Fatal("the child of an unsampled parent records; the test needs it not to")
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, "v", 0)
		p.Get(ctx, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	call.End()
	if got := len(spans.Ended()); got != 0 {
		t.Fatalf("under an unsampled call: %d spans, want none", got)
	}

	ctx, call = tp.Tracer("test").Start(context.Background(), "call")
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, "v", 0)
		p.Get(ctx, key)
		p.Set(ctx, key, "w", 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = rdb.Get(ctx, key+":missing").Err() // redis.Nil: not an error of the span
	_ = rdb.HGet(ctx, key, "field").Err()  // WRONGTYPE
	call.End()

	type want struct {
		name   string
		failed bool
		numCmd int
	}
	wants := []want{{"redis.pipeline set get", false, 3}, {"get", false, 0}, {"hget", true, 0}}
	var got []want
	for _, s := range spans.Ended() {
		if s.Name() == "call" {
			continue
		}
		if s.Parent().SpanID() != call.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %q: parent %v, kind %v; want a client span of the call", s.Name(), s.Parent().SpanID(), s.SpanKind())
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
		}
		if attrs["db.system"].AsString() != "redis" || attrs["server.address"].AsString() != "127.0.0.1" {
			t.Errorf("span %q: attributes %v, want db.system redis and server.address", s.Name(), s.Attributes())
		}
		got = append(got, want{s.Name(), s.Status().Code == codes.Error, int(attrs["db.redis.num_cmd"].AsInt64())})
	}
	if !slices.Equal(got, wants) {
		t.Errorf("spans: got %v, want %v", got, wants)
	}
}

// A client gets a connection for each call the gRPC server runs at once unless its Config or URL
// sizes the pool: calls must not queue inside the process for one of go-redis's 10 per core.
func TestPoolSize(t *testing.T) {
	tests := []struct {
		name string
		cfg  redisconn.Config
		want int
	}{
		{"default", redisconn.Config{URL: redistest.URL()}, 128},
		{"the URL's", redisconn.Config{URL: redistest.URL() + "?pool_size=7"}, 7},
		{"the Config's", redisconn.Config{URL: redistest.URL() + "?pool_size=7", PoolSize: 9}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := redisconn.Open(context.Background(), tt.cfg, sdktrace.NewTracerProvider(), noop.NewMeterProvider())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rdb.Close() })
			if got := rdb.(*redis.Client).Options().PoolSize; got != tt.want {
				t.Errorf("pool size: got %d, want %d", got, tt.want)
			}
		})
	}
}
