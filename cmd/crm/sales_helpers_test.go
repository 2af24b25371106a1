package main

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// salesScopes are what a sales rep's key holds: converting reads the lead from marketing and
// pricing reads the catalog, both with the caller's credential.
var salesScopes = []string{"sales.read", "sales.write", "marketing.read", "marketing.write", "product.read", "product.write"}

// sales returns a gRPC client of the sales service authenticated with key.
func (s *system) sales(key string) (salesv1.SalesServiceClient, context.Context) {
	ctx := context.Background()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	return salesv1.NewSalesServiceClient(s.grpc), ctx
}

// ok sends a request that must succeed and returns its JSON body.
func (s *system) ok(t *testing.T, method, path, key, body string) map[string]any {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	r := s.do(t, method, path, key, b)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	return r.json(t)
}

// fails sends a request that must fail with the HTTP status and AIP-193 status, and returns the
// error's details.
func (s *system) fails(t *testing.T, method, path, key, body string, code int, status string) []any {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	r := s.do(t, method, path, key, b)
	if r.status != code || errorStatus(t, r) != status {
		t.Fatalf("%s %s %s: %d %s, want %d %s", method, path, body, r.status, r.body, code, status)
	}
	e, _ := r.json(t)["error"].(map[string]any)
	details, _ := e["details"].([]any)
	return details
}

// errorMetadata returns the ErrorInfo metadata of an error's details.
func errorMetadata(details []any) map[string]any {
	for _, d := range details {
		dm := d.(map[string]any)
		if dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			m, _ := dm["metadata"].(map[string]any)
			return m
		}
	}
	return nil
}

// salesFootprint counts the Redis keys and events a tenant owns in sales, to prove that refused
// requests wrote nothing.
func (s *system) salesFootprint(t *testing.T, tenant string) (keys, events int) {
	t.Helper()
	ctx := context.Background()
	iter := s.rdb.Scan(ctx, 0, "crm:*:sales:"+tenant+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, len(s.salesEvents(t, tenant, ""))
}

// salesEvents decodes a tenant's sales events of one type (all when empty), oldest first per
// partition stream.
func (s *system) salesEvents(t *testing.T, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	ctx := context.Background()
	var out []*eventv1.Event
	streams := s.rdb.Scan(ctx, 0, "crm:*:sales:events", 100).Iterator()
	for streams.Next(ctx) {
		msgs, err := s.rdb.XRange(ctx, streams.Val(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			ev := &eventv1.Event{}
			if err := proto.Unmarshal([]byte(m.Values["e"].(string)), ev); err != nil {
				t.Fatal(err)
			}
			if ev.GetTenantId() == tenant && (eventType == "" || ev.GetType() == eventType) {
				out = append(out, ev)
			}
		}
	}
	return out
}

// str reads a string field of a JSON object.
func str(m map[string]any, field string) string {
	v, _ := m[field].(string)
	return v
}

// obj reads an object field of a JSON object.
func obj(m map[string]any, field string) map[string]any {
	v, _ := m[field].(map[string]any)
	return v
}

// ids lists the ids of a list response's items.
func ids(m map[string]any, plural string) []string {
	items, _ := m[plural].([]any)
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = str(it.(map[string]any), "id")
	}
	return out
}
