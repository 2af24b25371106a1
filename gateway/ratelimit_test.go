package main

import (
	"net/http"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/ratelimit"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestRateLimitPerKey(t *testing.T) {
	sys := startSystem(t, func(c *processConfig) { c.RateLimit = ratelimit.Config{PerSecond: 1, Burst: 3} })
	tenant, key := sys.newKey(t, "", "marketing.read")
	_, sameTenantOtherKey := sys.newKey(t, tenant, "marketing.read")

	for i := range 3 {
		if r := sys.do(t, http.MethodGet, "/v1/leads", key, nil); r.status != http.StatusOK {
			t.Fatalf("call %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	// The bucket refills at 1/s, so a slow machine may let one more through: rapid calls must hit
	// the limit within a few.
	var r response
	for range 10 {
		if r = sys.do(t, http.MethodGet, "/v1/leads", key, nil); r.status != http.StatusOK {
			break
		}
	}
	if r.status != http.StatusTooManyRequests || errorStatus(t, r) != "RESOURCE_EXHAUSTED" {
		t.Fatalf("call over the burst: %d %s, want 429 RESOURCE_EXHAUSTED", r.status, r.body)
	}
	if after, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || after < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}

	client, ctx := sys.marketing(key)
	var header metadata.MD
	var err error
	for range 10 {
		if _, err = client.ListLeads(ctx, &marketingv1.ListLeadsRequest{}, grpc.Header(&header)); err != nil {
			break
		}
	}
	if status.Code(err) != codes.ResourceExhausted || len(header.Get(ratelimit.RetryAfterHeader)) != 1 {
		t.Fatalf("gRPC over the limit: %v, retry-after %v", err, header.Get(ratelimit.RetryAfterHeader))
	}
	// The limit is per key: another key of the same tenant still gets through.
	if r := sys.do(t, http.MethodGet, "/v1/leads", sameTenantOtherKey, nil); r.status != http.StatusOK {
		t.Fatalf("another key: %d %s", r.status, r.body)
	}
}
