package rpc_test

import (
	"net/http"
	"net/url"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestTenantIsolation checks that the tenant comes from the credential alone: another tenant's lead
// is NOT_FOUND over REST and gRPC, absent from its lists, its page tokens are refused, and its
// e-mails are free.
func TestTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	_, owner := sys.NewKey(t, "", "admin")
	_, stranger := sys.NewKey(t, "", "admin")

	r := sys.Do(t, http.MethodPost, "/v1/leads", owner, []byte(`{"email":"secret@example.com"}`))
	if r.Status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)

	if got := sys.Do(t, http.MethodGet, "/v1/leads/"+id, stranger, nil); got.Status != http.StatusNotFound {
		t.Fatalf("foreign GET: %d %s, want 404", got.Status, got.Body)
	}
	list := sys.Do(t, http.MethodGet, "/v1/leads", stranger, nil).JSON(t)
	if leads, _ := list["leads"].([]any); len(leads) != 0 {
		t.Fatalf("foreign list shows %d leads, want none", len(leads))
	}
	client, ctx := sys.marketing(stranger)
	if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("foreign gRPC GetLead: %v, want NotFound", err)
	}
	// A page token minted for the owner means nothing to the stranger.
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if r := sys.Do(t, http.MethodPost, "/v1/leads", owner, []byte(`{"email":"`+email+`"}`)); r.Status != http.StatusOK {
			t.Fatalf("capture %s: %d", email, r.Status)
		}
	}
	page := sys.Do(t, http.MethodGet, "/v1/leads?pageSize=1", owner, nil).JSON(t)
	token, _ := page["nextPageToken"].(string)
	if token == "" {
		t.Fatal("owner's first page has no token")
	}
	if got := sys.Do(t, http.MethodGet, "/v1/leads?pageSize=1&pageToken="+url.QueryEscape(token), stranger, nil); got.Status != http.StatusBadRequest {
		t.Fatalf("stranger with the owner's page token: %d %s, want 400", got.Status, got.Body)
	}
	// The same e-mail in the stranger's tenant is the stranger's own, new lead.
	mine := sys.Do(t, http.MethodPost, "/v1/leads", stranger, []byte(`{"email":"secret@example.com"}`)).JSON(t)
	if mine["touchCount"] != "1" {
		t.Fatalf("stranger's capture of the same e-mail = %v, want a new lead", mine)
	}
}
