package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// chain is the whole interceptor chain as a process runs it (auth, rate limit, validation,
// idempotency keys on Redis), with the fake marketing service behind it.
type chain struct {
	suite *servicetest.Suite
	fake  *fakeMarketing
}

// startChain serves the fake through servicetest; rateLimit turns the limiter on when set.
func startChain(t *testing.T, rateLimit *ratelimit.Config) *chain {
	t.Helper()
	fake := &fakeMarketing{started: make(chan struct{}, 1), release: make(chan struct{})}
	suite := servicetest.Start(t, servicetest.Options{
		RateLimit: rateLimit,
		Fakes:     []func(grpc.ServiceRegistrar){func(s grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(s, fake) }},
	})
	return &chain{suite: suite, fake: fake}
}

// client returns a marketing client and a context that presents key and ends with the test.
func (c *chain) client(t *testing.T, key string) (marketingv1.MarketingServiceClient, context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return marketingv1.NewMarketingServiceClient(c.suite.Conn), servicetest.WithKey(ctx, key)
}

func TestAuthenticationThroughTheChain(t *testing.T) {
	c := startChain(t, nil)
	tenant, reader := c.suite.NewKey(t, "", "marketing.read")
	_, salesOnly := c.suite.NewKey(t, tenant, "sales.read", "sales.write")

	tests := []struct {
		name, key string
		want      codes.Code
	}{
		{"no key", "", codes.Unauthenticated},
		{"wrong key", "crm_not-a-key", codes.Unauthenticated},
		{"missing scope", salesOnly, codes.PermissionDenied},
		{"read scope", reader, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, ctx := c.client(t, tt.key)
			_, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: idOK})
			if status.Code(err) != tt.want {
				t.Fatalf("code %v, want %v: %v", status.Code(err), tt.want, err)
			}
		})
	}
}

func TestIdempotencyKeysOverGRPC(t *testing.T) {
	c := startChain(t, nil)
	_, key := c.suite.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := c.client(t, key)
	ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", "grpc-1")
	req := &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc-once@example.com"}}
	first, err := client.CaptureLead(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.CaptureLead(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) || c.fake.calls.Load() != 1 {
		t.Fatalf("replay = %v after %d handler calls, want %v from 1", again, c.fake.calls.Load(), first)
	}
	_, err = client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "changed@example.com"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("same key, other request: %v, want InvalidArgument", err)
	}
	// Reads ignore the key: each one reaches the handler.
	for i := range 2 {
		before := c.fake.calls.Load()
		if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: idOK}); err != nil || c.fake.calls.Load() != before+1 {
			t.Fatalf("read %d with a key: %v, handler calls %d, want %d", i, err, c.fake.calls.Load(), before+1)
		}
	}
}

// A client error is an outcome like a response: stored and replayed, the handler running once.
func TestIdempotencyReplaysClientErrors(t *testing.T) {
	c := startChain(t, nil)
	_, key := c.suite.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := c.client(t, key)
	ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", "refused-1")
	req := &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: emailRefused}}
	_, first := client.CaptureLead(ctx, req)
	_, again := client.CaptureLead(ctx, req)
	if status.Code(first) != codes.FailedPrecondition {
		t.Fatalf("first call: %v, want FailedPrecondition", first)
	}
	if !proto.Equal(status.Convert(first).Proto(), status.Convert(again).Proto()) {
		t.Fatalf("replay = %v, want %v", again, first)
	}
	if n := c.fake.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestRateLimitPerKeyOverGRPC(t *testing.T) {
	c := startChain(t, &ratelimit.Config{PerSecond: 1, Burst: 3})
	tenant, key := c.suite.NewKey(t, "", "marketing.read")
	_, sameTenantOtherKey := c.suite.NewKey(t, tenant, "marketing.read")
	client, ctx := c.client(t, key)
	get := &marketingv1.GetLeadRequest{Id: idOK}

	for i := range 3 {
		if _, err := client.GetLead(ctx, get); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	// The bucket refills at 1/s, so a slow machine may let one more through: rapid calls must hit
	// the limit within a few.
	var header metadata.MD
	var err error
	for range 10 {
		if _, err = client.GetLead(ctx, get, grpc.Header(&header)); err != nil {
			break
		}
	}
	if status.Code(err) != codes.ResourceExhausted || len(header.Get(ratelimit.RetryAfterHeader)) != 1 {
		t.Fatalf("gRPC over the limit: %v, retry-after %v", err, header.Get(ratelimit.RetryAfterHeader))
	}
	// The limit is per key: another key of the same tenant still gets through.
	other, otherCtx := c.client(t, sameTenantOtherKey)
	if _, err := other.GetLead(otherCtx, get); err != nil {
		t.Fatalf("another key: %v", err)
	}
}

// TestCauseOfACall checks what the platform records as the cause of a call's writes (the actor
// and request id every event it publishes carries): the key the call was authenticated with and
// the caller's request id, or a fresh one sent back when the caller gave none or an unusable one.
func TestCauseOfACall(t *testing.T) {
	c := startChain(t, nil)
	_, key := c.suite.NewKey(t, "", "marketing.write")
	principal, err := auth.NewStore(c.suite.Redis).Lookup(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"caller's request id", "req-2026-12-05.1", true},
		{"none sent", "", false},
		{"too long", strings.Repeat("r", 129), false},
		{"not printable", "req id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, ctx := c.client(t, key)
			if tt.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", tt.sent)
			}
			var header metadata.MD
			if _, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "a@example.com"}}, grpc.Header(&header)); err != nil {
				t.Fatal(err)
			}
			got := c.fake.cause.Load()
			if got.Method != "/crm.marketing.v1.MarketingService/CaptureLead" {
				t.Errorf("method %q, want CaptureLead's", got.Method)
			}
			if got.Actor.GetApiKeyId() != principal.KeyID {
				t.Errorf("actor %v, want API key %s", got.Actor, principal.KeyID)
			}
			if tt.keep && got.RequestID != tt.sent {
				t.Errorf("request id %q, want the caller's %q", got.RequestID, tt.sent)
			}
			if !tt.keep && (got.RequestID == "" || got.RequestID == tt.sent) {
				t.Errorf("request id %q, want a fresh one", got.RequestID)
			}
			if h := header.Get("x-request-id"); len(h) != 1 || h[0] != got.RequestID {
				t.Errorf("x-request-id header %v, want [%s]", h, got.RequestID)
			}
		})
	}
}
