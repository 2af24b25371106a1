package gateway_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

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

// TestHalfTheLimitIsNeverRefused: 16 clients calling together at half of --rate-limit 100
// --rate-burst 10 (more of them than the burst at the same moment) get no 429.
func TestHalfTheLimitIsNeverRefused(t *testing.T) {
	sys := startSystem(t, servicetest.Options{RateLimit: &ratelimit.Config{PerSecond: 100, Burst: 10}}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read")
	const clients, perSecond, run = 16, 50, 1500 * time.Millisecond
	interval := time.Duration(clients) * time.Second / perSecond
	statuses := make([][]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			for at := start; at.Sub(start) < run; at = at.Add(interval) {
				time.Sleep(time.Until(at)) // pacing the load at half the limit
				statuses[i] = append(statuses[i], sys.Do(t, http.MethodGet, "/v1/leads", key, nil).Status)
			}
		})
	}
	wg.Wait()
	calls := 0
	for _, got := range statuses {
		for _, s := range got {
			calls++
			if s != http.StatusOK {
				t.Errorf("a call at half the limit answered %d", s)
			}
		}
	}
	if calls < clients*int(run/interval) {
		t.Fatalf("%d calls made, want %d", calls, clients*int(run/interval))
	}
}
