package gateway_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// testMaxBody is the gateway's body limit in these tests.
const testMaxBody = 64 << 10

// TestBadBodiesAreRejectedBeforeTheService covers what the gateway itself refuses: bodies it
// cannot decode strictly and bodies over its limit are a 4xx naming the body, and never reach the
// service.
func TestBadBodiesAreRejectedBeforeTheService(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")

	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"unknown enum", `{"email":"a@example.com","channel":"CHANNEL_PIGEON"}`, 400},
		{"malformed JSON", `{"email":`, 400},
		{"unknown field", `{"email":"a@example.com","tenantId":"other"}`, 400},
		{"body over the limit", `{"email":"a@example.com","company":"` + strings.Repeat("x", testMaxBody) + `"}`, 413},
		{"trailing data", `{"email":"a@example.com"} {"email":"b@example.com"}`, 400},
		{"trailing garbage", `{"email":"a@example.com"}x`, 400},
		{"invalid UTF-8", "{\"email\":\"a@example.com\",\"company\":\"\xff\xfe\"}", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sys.Do(t, "POST", "/v1/leads", key, []byte(tt.body))
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if got := r.ErrorStatus(t); got != "INVALID_ARGUMENT" {
				t.Errorf("error.status = %q, want INVALID_ARGUMENT", got)
			}
			if fields := r.FieldViolations(t); !slices.Contains(fields, "body") {
				t.Errorf("field violations %v do not name %q: %s", fields, "body", r.Body)
			}
		})
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("rejected requests reached the service: %v", calls)
	}
}

// TestStrictDecodingNamesTheField covers strict decoding outside the body's syntax: a NUL in a
// value, unknown query parameters and malformed path or query values are 400 naming the field, in
// the request's JSON names, and never reach the service.
func TestStrictDecodingNamesTheField(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	for _, tt := range []struct {
		name, method, path, body, field string
	}{
		{"NUL in a value", "POST", "/v1/leads", `{"email":"a@example.com","givenName":"Ada\u0000"}`, "givenName"},
		{"NUL in a nested value", "POST", "/v1/leads", `{"email":"a@example.com","tags":["ok","x\u0000"]}`, "tags[1]"},
		{"unknown query parameter", "GET", "/v1/leads?pageSize=2&colour=red", "", "colour"},
		{"query parameter of another route", "POST", "/v1/leads?pageSize=2", `{"email":"a@example.com"}`, "pageSize"},
		{"invalid UTF-8 in a query value", "GET", "/v1/leads?filter=%ff", "", "filter"},
		{"NUL in a query value", "GET", "/v1/leads?pageToken=a%00b", "", "pageToken"},
		{"invalid UTF-8 in a path id", "GET", "/v1/leads/%ff%fe", "", "id"},
		{"NUL in a path id", "POST", "/v1/leads/a%00b:qualify", `{}`, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, key, body)
			if r.Status != 400 || r.ErrorStatus(t) != "INVALID_ARGUMENT" {
				t.Fatalf("status %d, want 400 INVALID_ARGUMENT: %s", r.Status, r.Body)
			}
			if fields := r.FieldViolations(t); !slices.Equal(fields, []string{tt.field}) {
				t.Errorf("field violations %v, want [%s]", fields, tt.field)
			}
		})
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("rejected requests reached the service: %v", calls)
	}
	// The accepted forms still pass: JSON and proto names of known parameters.
	for _, path := range []string{"/v1/leads?pageSize=2", "/v1/leads?page_size=2&orderBy=score%20desc"} {
		if r := sys.Do(t, "GET", path, key, nil); r.Status != 200 {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
}
