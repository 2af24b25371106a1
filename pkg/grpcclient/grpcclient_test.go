package grpcclient_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/crmcycle/crm/pkg/grpcclient"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// seen is what the callee observed of one call.
type seen struct {
	authorization []string
	deadline      time.Duration // remaining at arrival; 0 for none
	traceparent   string
}

func startCallee(t *testing.T) (string, <-chan seen) {
	t.Helper()
	calls := make(chan seen, 16)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		s := seen{authorization: md.Get("authorization"), traceparent: strings.Join(md.Get("traceparent"), ",")}
		if d, ok := ctx.Deadline(); ok {
			s.deadline = time.Until(d)
		}
		calls <- s
		return handler(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), calls
}

func TestPool(t *testing.T) {
	target, calls := startCallee(t)
	tp := sdktrace.NewTracerProvider()
	pool := grpcclient.NewPool(grpcclient.Config{Timeout: 3 * time.Second}, telemetry.ForTest(tp, noop.NewMeterProvider()))
	t.Cleanup(func() { _ = pool.Close() })

	conn, err := pool.Conn(target)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pool.Conn(target)
	if err != nil {
		t.Fatal(err)
	}
	if conn != again {
		t.Errorf("Conn twice for %s: got two connections, want one shared", target)
	}
	client := healthpb.NewHealthClient(conn)

	spanCtx, span := tp.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	incoming := func(ctx context.Context, auth string) context.Context {
		return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", auth))
	}
	tests := []struct {
		name         string
		ctx          func() (context.Context, context.CancelFunc)
		wantAuth     []string
		wantDeadline time.Duration // upper bound of the remaining time seen by the callee
		wantTrace    bool          // the callee continues the caller's trace
	}{
		{
			name:         "no deadline gets the default",
			ctx:          func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantDeadline: 3 * time.Second,
		},
		{
			name: "caller's deadline is kept",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			},
			wantDeadline: time.Second,
		},
		{
			name: "caller's longer deadline is kept",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Minute)
			},
			wantDeadline: time.Minute,
		},
		{
			name: "incoming credential is forwarded",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithCancel(incoming(context.Background(), "Bearer crm_caller"))
			},
			wantAuth:     []string{"Bearer crm_caller"},
			wantDeadline: 3 * time.Second,
		},
		{
			name: "outgoing credential wins",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx := incoming(context.Background(), "Bearer crm_caller")
				return context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer crm_service"))
			},
			wantAuth:     []string{"Bearer crm_service"},
			wantDeadline: 3 * time.Second,
		},
		{
			name:         "trace context is propagated",
			ctx:          func() (context.Context, context.CancelFunc) { return context.WithCancel(spanCtx) },
			wantDeadline: 3 * time.Second,
			wantTrace:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("Check: %v", err)
			}
			got := <-calls
			if len(got.authorization) != len(tt.wantAuth) || (len(tt.wantAuth) > 0 && got.authorization[0] != tt.wantAuth[0]) {
				t.Errorf("authorization: got %q, want %q", got.authorization, tt.wantAuth)
			}
			if got.deadline <= 0 || got.deadline > tt.wantDeadline || got.deadline < tt.wantDeadline/2 {
				t.Errorf("deadline at the callee: got %v, want close to %v", got.deadline, tt.wantDeadline)
			}
			callerTrace := span.SpanContext().TraceID().String()
			if continued := strings.Contains(got.traceparent, callerTrace); continued != tt.wantTrace {
				t.Errorf("traceparent %q continues trace %s: got %v, want %v", got.traceparent, callerTrace, continued, tt.wantTrace)
			}
		})
	}
}

func TestPoolClose(t *testing.T) {
	target, _ := startCallee(t)
	pool := grpcclient.NewPool(grpcclient.Config{}, telemetry.ForTest(sdktrace.NewTracerProvider(), noop.NewMeterProvider()))
	first, err := pool.Conn(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	second, err := pool.Conn(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	if first == second {
		t.Errorf("Conn after Close: got the closed connection, want a new one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(second).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("Check on the new connection: %v", err)
	}
}

// TestCallsSpreadOverEveryAddress: a name that resolves to several replicas (a headless Service)
// gets its calls spread round-robin over all of them, not pinned to the first.
func TestCallsSpreadOverEveryAddress(t *testing.T) {
	first, firstCalls := startCallee(t)
	second, secondCalls := startCallee(t)
	replicas := manual.NewBuilderWithScheme("replicas")
	replicas.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: first}, {Addr: second}}})
	resolver.Register(replicas)
	pool := grpcclient.NewPool(grpcclient.Config{Timeout: 3 * time.Second}, telemetry.ForTest(sdktrace.NewTracerProvider(), noop.NewMeterProvider()))
	t.Cleanup(func() { _ = pool.Close() })
	conn, err := pool.Conn("replicas:///crm-sales")
	if err != nil {
		t.Fatal(err)
	}
	var a, b int
	call := func() {
		t.Helper()
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
		for drained := false; !drained; {
			select {
			case <-firstCalls:
				a++
			case <-secondCalls:
				b++
			default:
				drained = true
			}
		}
	}
	// Until both connections are up, round robin has one to pick (a busy machine connects the
	// second later): call until each replica has had a call, then count.
	for deadline := time.Now().Add(10 * time.Second); a == 0 || b == 0; call() {
		if time.Now().After(deadline) {
			t.Fatalf("calls per replica after 10 s: %d and %d, want both reached", a, b)
		}
	}
	const calls = 10
	a, b = 0, 0
	for range calls {
		call()
	}
	if a+b != calls || a < 2 || b < 2 {
		t.Fatalf("calls per replica: %d and %d, want them spread over both", a, b)
	}
}
