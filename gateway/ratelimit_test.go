package gateway_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// TestRateLimitPerKey checks that a key over its limit gets 429 RESOURCE_EXHAUSTED with the
// interceptor's retry-after as a Retry-After header, and that the limit is the key's alone.
func TestRateLimitPerKey(t *testing.T) {
	sys := startSystem(t, servicetest.Options{RateLimit: &ratelimit.Config{PerSecond: 1, Burst: 3}}, gateway.Config{})
	tenant, key := sys.NewKey(t, "", "marketing.read")
	_, sameTenantOtherKey := sys.NewKey(t, tenant, "marketing.read")

	for i := range 3 {
		if r := sys.Do(t, http.MethodGet, "/v1/leads", key, nil); r.Status != http.StatusOK {
			t.Fatalf("call %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	// The bucket refills at 1/s, so a slow machine may let one more through: rapid calls must hit
	// the limit within a few.
	var r gatewaytest.Response
	for range 10 {
		if r = sys.Do(t, http.MethodGet, "/v1/leads", key, nil); r.Status != http.StatusOK {
			break
		}
	}
	if r.Status != http.StatusTooManyRequests || r.ErrorStatus(t) != "RESOURCE_EXHAUSTED" {
		t.Fatalf("call over the burst: %d %s, want 429 RESOURCE_EXHAUSTED", r.Status, r.Body)
	}
	if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
	}
	// The limit is per key: another key of the same tenant still gets through.
	if r := sys.Do(t, http.MethodGet, "/v1/leads", sameTenantOtherKey, nil); r.Status != http.StatusOK {
		t.Fatalf("another key: %d %s", r.Status, r.Body)
	}
}
