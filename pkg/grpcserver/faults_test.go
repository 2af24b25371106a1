package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// blackhole accepts connections and never answers, as a Redis behind a dead network path.
func blackhole(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return lis.Addr().String()
}

// errorReply makes the real Redis answer with an error reply, as a loading or failing cluster does.
func errorReply(rdb redis.UniversalClient, reply string) func(context.Context) error {
	return func(ctx context.Context) error {
		return rdb.Eval(ctx, "return redis.error_reply(ARGV[1])", nil, reply).Err()
	}
}

// downstream is a status another service's connection reports.
func downstream(st *status.Status, details ...*errdetails.ErrorInfo) func(context.Context) error {
	return func(context.Context) error {
		if len(details) > 0 {
			st, _ = st.WithDetails(details[0])
		}
		return fmt.Errorf("quote the lines: %w", st.Err())
	}
}

// TestFaultsAreAnsweredHonestly: what Redis or another service says when it cannot answer reaches
// the client as UNAVAILABLE with retry-after, a limit hit inside as RESOURCE_EXHAUSTED with
// retry-after, a bug as INTERNAL; never with the fault's own text.
func TestFaultsAreAnsweredHonestly(t *testing.T) {
	h := start(t, 5*time.Second)
	rdb := redistest.Client(t)
	unreachable := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	silent := redis.NewClient(&redis.Options{Addr: blackhole(t), ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = unreachable.Close(); _ = silent.Close() })
	limited := &errdetails.ErrorInfo{Reason: ratelimit.ErrLimited.Reason, Domain: "product.crm",
		Metadata: map[string]string{"retry_after_seconds": "3"}}
	tests := []struct {
		name           string
		fault          func(context.Context) error
		wantCode       codes.Code
		wantReason     string
		wantRetryAfter string
	}{
		{"redis refuses connections", func(ctx context.Context) error { return unreachable.Get(ctx, "k").Err() },
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"redis does not answer", func(ctx context.Context) error { return silent.Get(ctx, "k").Err() },
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"redis is loading", errorReply(rdb, "LOADING Redis is loading the dataset in memory"),
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"the cluster is down", errorReply(rdb, "CLUSTERDOWN The cluster is down"),
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"redis is out of memory", errorReply(rdb, "OOM command not allowed when used memory > 'maxmemory'"),
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"the pool has no connection", func(context.Context) error { return fmt.Errorf("get: %w", redis.ErrPoolTimeout) },
			codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"an internal error caused by redis", func(ctx context.Context) error {
			return apierr.New(apierr.Internal, "INTERNAL", "internal error").Wrap(unreachable.Get(ctx, "k").Err())
		}, codes.Unavailable, "STORE_UNAVAILABLE", "1"},
		{"another service cannot be reached", downstream(status.New(codes.Unavailable,
			"connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: secret\"")),
			codes.Unavailable, "SERVICE_UNAVAILABLE", "1"},
		{"another service fails", downstream(status.New(codes.Internal, "secret stack")),
			codes.Internal, "INTERNAL", ""},
		{"another service refuses the client's rate", func(ctx context.Context) error {
			st, _ := status.New(codes.ResourceExhausted, "too many").WithDetails(limited)
			return apierr.New(apierr.Unavailable, "PRODUCT_UNAVAILABLE", "cannot price").Wrap(st.Err())
		}, codes.ResourceExhausted, ratelimit.ErrLimited.Reason, "3"},
		{"a needed service said unavailable itself", func(ctx context.Context) error {
			return apierr.New(apierr.Unavailable, "PRODUCT_UNAVAILABLE", "the product service cannot price the lines right now; retry")
		}, codes.Unavailable, "PRODUCT_UNAVAILABLE", "1"},
		{"a plain bug", func(context.Context) error { return fmt.Errorf("secret bug") }, codes.Internal, "INTERNAL", ""},
	}
	h.fake.faults = map[string]func(context.Context) error{}
	for i, tt := range tests {
		id := fmt.Sprintf("0190a1b2-0000-7000-8000-1000000000%02d", i)
		h.fake.faults[id] = tt.fault
	}
	client := marketingv1.NewMarketingServiceClient(h.conn)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(withAuthorization(context.Background(), bearer("read")(h)), 10*time.Second)
			defer cancel()
			var header metadata.MD
			began := time.Now()
			_, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: fmt.Sprintf("0190a1b2-0000-7000-8000-1000000000%02d", i)}, grpc.Header(&header))
			if took := time.Since(began); took > time.Second {
				t.Errorf("the answer took %v, want under a second", took)
			}
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code: got %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			if got := reasonOf(st); got != tt.wantReason {
				t.Errorf("reason: got %q, want %q", got, tt.wantReason)
			}
			if got := strings.Join(header.Get(ratelimit.RetryAfterHeader), ","); got != tt.wantRetryAfter {
				t.Errorf("retry-after: got %q, want %q", got, tt.wantRetryAfter)
			}
			for _, leak := range []string{"secret", "127.0.0.1", "LOADING", "CLUSTERDOWN", "OOM", "i/o timeout", "dial"} {
				if wire := prototext.Format(st.Proto()); strings.Contains(wire, leak) {
					t.Errorf("status carries %q: %s", leak, wire)
				}
			}
		})
	}
}

func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
