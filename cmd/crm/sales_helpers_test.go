package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/crmcycle/crm/pkg/servicetest"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// salesScopes are what a sales rep's key holds: converting reads the lead from marketing and
// pricing reads the catalog, both with the caller's credential.
var salesScopes = []string{"sales.read", "sales.write", "marketing.read", "marketing.write", "product.read", "product.write"}

// sales returns a gRPC client of the sales service authenticated with key.
func (s *system) sales(key string) (salesv1.SalesServiceClient, context.Context) {
	return salesv1.NewSalesServiceClient(s.grpc), servicetest.WithKey(context.Background(), key)
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
