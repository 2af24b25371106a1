package main

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func (s *system) doWithKey(t *testing.T, apiKey, idemKey string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.rest+"/v1/leads", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestIdempotencyKeysOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", "marketing.read", "marketing.write")
	body := []byte(`{"email":"once@example.com","channel":"CHANNEL_WEB"}`)

	first := sys.doWithKey(t, key, "order-1", body)
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := sys.doWithKey(t, key, "order-1", body)
	if again.status != http.StatusOK || !bytes.Equal(again.body, first.body) {
		t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
	}
	if got := sys.do(t, http.MethodGet, "/v1/leads/"+first.json(t)["id"].(string), key, nil).json(t)["touchCount"]; got != "1" {
		t.Fatalf("touch count %v after a replay, want 1: the replay must not capture again", got)
	}
	reused := sys.doWithKey(t, key, "order-1", []byte(`{"email":"other@example.com"}`))
	if reused.status != http.StatusUnprocessableEntity || errorStatus(t, reused) != "INVALID_ARGUMENT" {
		t.Fatalf("same key, other request: %d %s, want 422", reused.status, reused.body)
	}
	bad := sys.doWithKey(t, key, "has spaces", body)
	if bad.status != http.StatusBadRequest {
		t.Fatalf("malformed key: %d %s, want 400", bad.status, bad.body)
	}
	// A client error is stored too: the same request with the same key gets the same error.
	invalid := []byte(`{"email":"not-an-email"}`)
	e1, e2 := sys.doWithKey(t, key, "bad-1", invalid), sys.doWithKey(t, key, "bad-1", invalid)
	if e1.status != http.StatusBadRequest || !bytes.Equal(e1.body, e2.body) {
		t.Fatalf("stored client error not replayed: %d %s / %s", e1.status, e1.body, e2.body)
	}

	// Concurrent duplicates: one effect, every caller the same answer.
	const callers = 10
	concurrent := []byte(`{"email":"race@example.com"}`)
	results := make([]response, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i] = sys.doWithKey(t, key, "race-1", concurrent) })
	}
	wg.Wait()
	for i, r := range results {
		if r.status != http.StatusOK || !bytes.Equal(r.body, results[0].body) {
			t.Fatalf("caller %d got %d %s, caller 0 got %s", i, r.status, r.body, results[0].body)
		}
	}
	if tc := results[0].json(t)["touchCount"]; tc != "1" {
		t.Fatalf("touch count %v after %d concurrent duplicates, want 1", tc, callers)
	}
	captures := 0
	for _, ev := range sys.tenantEvents(t, tenant) {
		if ev.GetType() == "marketing.lead.captured" {
			captures++
		}
	}
	if captures != 2 {
		t.Fatalf("%d captured events for 2 distinct captures, want 2", captures)
	}

	// Keys belong to a tenant: another tenant's identical key is a different key.
	_, otherKey := sys.newKey(t, "", "marketing.write")
	if r := sys.doWithKey(t, otherKey, "order-1", body); r.status != http.StatusOK || bytes.Equal(r.body, first.body) {
		t.Fatalf("another tenant's request with the same key: %d %s", r.status, r.body)
	}
}

func TestIdempotencyKeysOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
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
	if !proto.Equal(first, again) || again.GetLead().GetTouchCount() != 1 {
		t.Fatalf("replay = %v, want %v", again, first)
	}
	_, err = client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "changed@example.com"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("same key, other request: %v, want InvalidArgument", err)
	}
	// Reads ignore the key.
	list, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{})
	if err != nil || len(list.GetLeads()) != 1 {
		t.Fatalf("list with a key: %v %v", list, err)
	}
}
