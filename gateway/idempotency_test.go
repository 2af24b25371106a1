package gateway_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// captureWithKey posts a capture with an Idempotency-Key header.
func (s *system) captureWithKey(t *testing.T, apiKey, idemKey string, body []byte) gatewaytest.Response {
	t.Helper()
	return s.DoWith(t, http.MethodPost, "/v1/leads", apiKey, body, http.Header{"Idempotency-Key": {idemKey}})
}

// TestIdempotencyKeysOverREST checks that the gateway forwards Idempotency-Key to the interceptor
// and renders its answers: a replay is byte-identical and does not run the handler again, a key
// reused for another request is 422, and concurrent duplicates run the handler once.
func TestIdempotencyKeysOverREST(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	body := []byte(`{"email":"once@example.com","channel":"CHANNEL_WEB"}`)

	first := sys.captureWithKey(t, key, "order-1", body)
	if first.Status != http.StatusOK {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := sys.captureWithKey(t, key, "order-1", body)
	if again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, again.Body)
	}
	if got := sys.marketing.captured("once@example.com"); got != 1 {
		t.Fatalf("handler ran %d times after a replay, want 1: the replay must not capture again", got)
	}
	reused := sys.captureWithKey(t, key, "order-1", []byte(`{"email":"other@example.com"}`))
	if reused.Status != http.StatusUnprocessableEntity || reused.ErrorStatus(t) != "INVALID_ARGUMENT" {
		t.Fatalf("same key, other request: %d %s, want 422", reused.Status, reused.Body)
	}
	bad := sys.captureWithKey(t, key, "has spaces", body)
	if bad.Status != http.StatusBadRequest {
		t.Fatalf("malformed key: %d %s, want 400", bad.Status, bad.Body)
	}
	// A client error is stored too: the same request with the same key gets the same error.
	invalid := []byte(`{"email":"` + rejectedEmail + `"}`)
	// Each answer's RequestInfo names its own request; the rest is the stored error.
	e1, e2 := sys.captureWithKey(t, key, "bad-1", invalid), sys.captureWithKey(t, key, "bad-1", invalid)
	id1, id2 := e1.Header.Get("X-Request-Id"), e2.Header.Get("X-Request-Id")
	if e1.Status != http.StatusBadRequest || id1 == id2 ||
		!bytes.Equal(bytes.Replace(e1.Body, []byte(id1), nil, 1), bytes.Replace(e2.Body, []byte(id2), nil, 1)) {
		t.Fatalf("stored client error not replayed: %d %s / %s", e1.Status, e1.Body, e2.Body)
	}

	// Concurrent duplicates: one effect, every caller the same answer.
	const callers = 10
	concurrent := []byte(`{"email":"race@example.com"}`)
	results := make([]gatewaytest.Response, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i] = sys.captureWithKey(t, key, "race-1", concurrent) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, results[0].Body) {
			t.Fatalf("caller %d got %d %s, caller 0 got %s", i, r.Status, r.Body, results[0].Body)
		}
	}
	if got := sys.marketing.captured("race@example.com"); got != 1 {
		t.Fatalf("handler ran %d times for %d concurrent duplicates, want 1", got, callers)
	}
	// Only the 2 distinct captures went through, once each: the reused and the malformed key did not.
	for email, want := range map[string]int{"once@example.com": 1, "other@example.com": 0, "race@example.com": 1} {
		if got := sys.marketing.captured(email); got != want {
			t.Fatalf("handler ran %d times for %s, want %d", got, email, want)
		}
	}

	// Keys belong to a tenant: another tenant's identical key is a different key.
	_, otherKey := sys.NewKey(t, "", "marketing.write")
	if r := sys.captureWithKey(t, otherKey, "order-1", body); r.Status != http.StatusOK || bytes.Equal(r.Body, first.Body) {
		t.Fatalf("another tenant's request with the same key: %d %s", r.Status, r.Body)
	}
	if got := sys.marketing.captured("once@example.com"); got != 2 {
		t.Fatalf("handler ran %d times for once@example.com, want 2: the other tenant's key is not a replay", got)
	}
}
