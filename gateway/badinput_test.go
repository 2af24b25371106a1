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
