package main

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestAuthentication(t *testing.T) {
	sys := startSystem(t)
	tenant, writer := sys.newKey(t, "", "marketing.write")
	_, reader := sys.newKey(t, tenant, "marketing.read")
	_, salesOnly := sys.newKey(t, tenant, "sales.read", "sales.write")
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
			r := sys.do(t, tt.method, tt.path, tt.key, tt.body)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.wantStatus != "" && errorStatus(t, r) != tt.wantStatus {
				t.Fatalf("error.status = %q, want %q", errorStatus(t, r), tt.wantStatus)
			}
			if tt.want == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	grpcCases := []struct {
		name, key string
		want      codes.Code
	}{
		{"no key", "", codes.Unauthenticated},
		{"wrong key", "crm_not-a-key", codes.Unauthenticated},
		{"missing scope", salesOnly, codes.PermissionDenied},
		{"read scope", reader, codes.OK},
	}
	for _, tt := range grpcCases {
		t.Run("gRPC/"+tt.name, func(t *testing.T) {
			client, ctx := sys.marketing(tt.key)
			_, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{})
			if status.Code(err) != tt.want {
				t.Fatalf("code %v, want %v: %v", status.Code(err), tt.want, err)
			}
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	_, owner := sys.newKey(t, "", "admin")
	_, stranger := sys.newKey(t, "", "admin")

	r := sys.do(t, http.MethodPost, "/v1/leads", owner, []byte(`{"email":"secret@example.com"}`))
	if r.status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)

	if got := sys.do(t, http.MethodGet, "/v1/leads/"+id, stranger, nil); got.status != http.StatusNotFound {
		t.Fatalf("foreign GET: %d %s, want 404", got.status, got.body)
	}
	list := sys.do(t, http.MethodGet, "/v1/leads", stranger, nil).json(t)
	if leads, _ := list["leads"].([]any); len(leads) != 0 {
		t.Fatalf("foreign list shows %d leads, want none", len(leads))
	}
	client, ctx := sys.marketing(stranger)
	if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("foreign gRPC GetLead: %v, want NotFound", err)
	}
	// A page token minted for the owner means nothing to the stranger.
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if r := sys.do(t, http.MethodPost, "/v1/leads", owner, []byte(`{"email":"`+email+`"}`)); r.status != http.StatusOK {
			t.Fatalf("capture %s: %d", email, r.status)
		}
	}
	page := sys.do(t, http.MethodGet, "/v1/leads?pageSize=1", owner, nil).json(t)
	token, _ := page["nextPageToken"].(string)
	if token == "" {
		t.Fatal("owner's first page has no token")
	}
	if got := sys.do(t, http.MethodGet, "/v1/leads?pageSize=1&pageToken="+token, stranger, nil); got.status != http.StatusBadRequest {
		t.Fatalf("stranger with the owner's page token: %d %s, want 400", got.status, got.body)
	}
	// The same e-mail in the stranger's tenant is the stranger's own, new lead.
	mine := sys.do(t, http.MethodPost, "/v1/leads", stranger, []byte(`{"email":"secret@example.com"}`)).json(t)
	if mine["touchCount"] != "1" {
		t.Fatalf("stranger's capture of the same e-mail = %v, want a new lead", mine)
	}
}
