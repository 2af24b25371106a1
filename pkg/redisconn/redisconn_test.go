package redisconn_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

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
