package gateway_test

import (
	"net/http"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// TestAuthentication checks that the gateway forwards the caller's credential, renders the
// interceptors' refusals as 401/403 with an AIP-193 body, and that only a caller with the right
// scope reaches the service, as its own tenant.
func TestAuthentication(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	tenant, writer := sys.NewKey(t, "", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, salesOnly := sys.NewKey(t, tenant, "sales.read", "sales.write")
	body := []byte(`{"email":"auth@example.com"}`)

	rest := []struct {
		name, method, path, key string
		body                    []byte
		want                    int
		wantStatus              string
	}{
		{"no key", "GET", "/v1/leads", "", nil, 401, "UNAUTHENTICATED"},
		{"wrong key", "GET", "/v1/leads", "crm_not-a-key", nil, 401, "UNAUTHENTICATED"},
		{"other service's scope", "GET", "/v1/leads", salesOnly, nil, 403, "PERMISSION_DENIED"},
		{"read scope cannot write", "POST", "/v1/leads", reader, body, 403, "PERMISSION_DENIED"},
		{"write scope cannot read", "GET", "/v1/leads", writer, nil, 403, "PERMISSION_DENIED"},
		{"write scope writes", "POST", "/v1/leads", writer, body, 200, ""},
		{"read scope reads", "GET", "/v1/leads", reader, nil, 200, ""},
	}
	for _, tt := range rest {
		t.Run("REST/"+tt.name, func(t *testing.T) {
			before := len(sys.marketing.received())
			r := sys.Do(t, tt.method, tt.path, tt.key, tt.body)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if tt.wantStatus != "" && r.ErrorStatus(t) != tt.wantStatus {
				t.Fatalf("error.status = %q, want %q", r.ErrorStatus(t), tt.wantStatus)
			}
			if tt.want == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			calls := sys.marketing.received()[before:]
			if tt.want != http.StatusOK {
				if len(calls) != 0 {
					t.Fatalf("a refused request reached the service: %v", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].tenant != tenant {
				t.Fatalf("calls that reached the service: got %v, want one as tenant %s", calls, tenant)
			}
		})
	}
}
