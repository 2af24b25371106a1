package redisconn_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
)

// requestRoundTrips is the counter's value per rpc.method.
func requestRoundTrips(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != redisconn.RequestRoundTrips {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				service, _ := p.Attributes.Value(attribute.Key("rpc.service"))
				method, _ := p.Attributes.Value(attribute.Key("rpc.method"))
				out[service.AsString()+"/"+method.AsString()] += p.Value
			}
		}
	}
	return out
}

// The counter counts the round trips a gRPC call makes while it is served, a pipeline as one, by
// method; a fresh connection's handshake and the commands sent outside a call are not counted.
func TestRequestRoundTripsCountsWhatCallsSend(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL(), ClientName: "crm"},
		sdktrace.NewTracerProvider(), mp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	key := "redisconn:trips:" + redistest.Tenant(t)

	// A real gRPC server whose methods send Redis commands from the call's context: "One" a
	// command, "Two" two commands, "Pipe" a pipeline of three, "Fresh" a PING on a connection it
	// holds and meanwhile a command, which needs a new connection: its handshake (HELLO, CLIENT
	// SETNAME) goes through the hooks with the call's context first.
	fresh, err := redisconn.Open(context.Background(), redisconn.Config{URL: redistest.URL(), ClientName: "crm"},
		sdktrace.NewTracerProvider(), mp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Close() })
	handlers := map[string]func(ctx context.Context) error{
		"/test.Trips/One": func(ctx context.Context) error { return rdb.Incr(ctx, key).Err() },
		"/test.Trips/Two": func(ctx context.Context) error {
			if err := rdb.Incr(ctx, key).Err(); err != nil {
				return err
			}
			return rdb.Get(ctx, key).Err()
		},
		"/test.Trips/Pipe": func(ctx context.Context) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, key)
				p.Incr(ctx, key)
				p.Get(ctx, key)
				return nil
			})
			return err
		},
		"/test.Trips/Fresh": func(ctx context.Context) error {
			held := fresh.(*redis.Client).Conn()
			defer held.Close()
			if err := held.Ping(ctx).Err(); err != nil {
				return err
			}
			if n := fresh.PoolStats().IdleConns; n != 0 {
				return fmt.Errorf("%d idle connections, want none: the command would not open one", n)
			}
			return fresh.Incr(ctx, key).Err()
		},
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		if err := handlers[method](stream.Context()); err != nil {
			return err
		}
		return stream.SendMsg(&emptypb.Empty{})
	}))
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	calls := map[string]int{"/test.Trips/One": 3, "/test.Trips/Two": 2, "/test.Trips/Pipe": 2, "/test.Trips/Fresh": 1}
	for method, n := range calls {
		for range n {
			if err := conn.Invoke(context.Background(), method, &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
				t.Fatalf("%s: %v", method, err)
			}
		}
	}
	// Outside a call: a command and a pipeline, counted nowhere.
	if err := rdb.Incr(context.Background(), key).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error { p.Get(context.Background(), key); return nil }); err != nil {
		t.Fatal(err)
	}

	got := requestRoundTrips(t, reader)
	want := map[string]int64{"test.Trips/One": 3, "test.Trips/Two": 4, "test.Trips/Pipe": 2, "test.Trips/Fresh": 2}
	if len(got) != len(want) {
		t.Errorf("round trips by method = %v, want %v", got, want)
	}
	for method, n := range want {
		if got[method] != n {
			t.Errorf("round trips of %s = %d, want %d (all: %v)", method, got[method], n, got)
		}
	}
	// What the calls did reached Redis: 3 + 2 + 2*2 + 1 increments, and the one outside a call.
	if n, err := rdb.Get(context.Background(), key).Int(); err != nil || n != 11 {
		t.Errorf("counter = %d, %v; want 11", n, err)
	}
}
