package redisconn

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
)

// RequestRoundTrips is the counter of the round trips to Redis that gRPC calls make while they are
// served, by method (attributes rpc.service and rpc.method): DESIGN.md §10's "one round trip on
// the request path of a write", read from a running process (on /metrics,
// crm_redis_request_round_trips_total). What a process sends outside a call is not counted: event
// reactions, sweeps and the bus' reads, although they may share the call's connections; nor is
// the handshake of a connection a call opened. A pipeline is one round trip per node it goes to.
const RequestRoundTrips = "crm.redis.request.round_trips"

// roundTripsHook counts the request path's round trips (RequestRoundTrips).
type roundTripsHook struct {
	counter metric.Int64Counter
	methods *sync.Map // full gRPC method → its []metric.AddOption, built once
}

var _ redis.Hook = roundTripsHook{}

// instrumentRoundTrips adds the round-trip counter to every node client of rdb.
func instrumentRoundTrips(rdb redis.UniversalClient, mp metric.MeterProvider) error {
	counter, err := mp.Meter("github.com/crmcycle/crm/pkg/redisconn").Int64Counter(RequestRoundTrips,
		metric.WithDescription("round trips to Redis made while serving gRPC calls, by method (a pipeline is one)"),
		metric.WithUnit("{round_trip}"))
	if err != nil {
		return err
	}
	hook := roundTripsHook{counter: counter, methods: &sync.Map{}}
	switch rdb := rdb.(type) {
	case *redis.Client:
		rdb.AddHook(hook)
	case *redis.ClusterClient:
		rdb.OnNewNode(func(c *redis.Client) { c.AddHook(hook) })
	}
	return nil
}

func (h roundTripsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !Handshake(cmd) {
			h.count(ctx)
		}
		return next(ctx, cmd)
	}
}

func (h roundTripsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if !Handshake(cmd) {
				h.count(ctx)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// count adds one round trip to the method of the gRPC call ctx serves, if any.
func (h roundTripsHook) count(ctx context.Context) {
	method, ok := grpc.Method(ctx)
	if !ok {
		return
	}
	opts, ok := h.methods.Load(method)
	if !ok {
		service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
		opts, _ = h.methods.LoadOrStore(method, []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", service), attribute.String("rpc.method", name)))})
	}
	h.counter.Add(ctx, 1, opts.([]metric.AddOption)...)
}

// Handshake reports the commands go-redis sends on a connection it has just opened (HELLO,
// CLIENT SETNAME, AUTH, SELECT, READONLY): they pass through the hooks with the context of the
// call that needed the connection, but are the pool's cost, once per connection, not the call's.
func Handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}
