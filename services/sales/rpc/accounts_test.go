package rpc_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

func TestAccountsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)

	acme := sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Acme Corp","domain":" ACME.example ","ownerId":"ada","industry":"software"}`)
	id := str(acme, "id")
	if str(acme, "domain") != "acme.example" || str(acme, "etag") != "1" || str(acme, "ownerId") != "ada" {
		t.Fatalf("created account = %v", acme)
	}
	if got := sys.OK(t, http.MethodGet, "/v1/accounts/"+id, key, ""); str(got, "displayName") != "Acme Corp" {
		t.Fatalf("get = %v", got)
	}
	// The domain is unique per tenant, whatever its case: the conflict names the existing account.
	details := sys.Fails(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Other","domain":"acme.EXAMPLE"}`, http.StatusConflict, "ALREADY_EXISTS")
	if got := gatewaytest.ErrorMetadata(details)["existing_id"]; got != id {
		t.Fatalf("domain conflict names %v, want %s", got, id)
	}
	sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"acme labs","ownerId":"bob","industry":"retail"}`)
	sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Zeta","ownerId":"ada","industry":"retail"}`)

	for _, c := range []struct {
		filter string
		want   []string
	}{
		{`owner_id = "ada"`, []string{"Zeta", "Acme Corp"}},
		{`industry = "retail"`, []string{"Zeta", "acme labs"}},
		{`display_name = "ACME*"`, []string{"Acme Corp", "acme labs"}},
		{`display_name = "zz*"`, nil},
	} {
		got := sys.OK(t, http.MethodGet, "/v1/accounts?filter="+url.QueryEscape(c.filter), key, "")
		var names []string
		items, _ := got["accounts"].([]any)
		for _, a := range items {
			names = append(names, str(a.(map[string]any), "displayName"))
		}
		if c.want == nil {
			if _, has := got["accounts"]; has {
				t.Errorf("filter %s: %v, want none", c.filter, names)
			}
			continue
		}
		if diff := cmp.Diff(c.want, names); diff != "" {
			t.Errorf("filter %s (-want +got):\n%s", c.filter, diff)
		}
	}
	sys.Fails(t, http.MethodGet, "/v1/accounts?filter="+url.QueryEscape(`size > 3`), key, "", http.StatusBadRequest, "INVALID_ARGUMENT")

	// Pages by the name index carry signed tokens bound to the filter.
	filter := url.QueryEscape(`display_name = "a*"`)
	first := sys.OK(t, http.MethodGet, "/v1/accounts?pageSize=1&filter="+filter, key, "")
	token := str(first, "nextPageToken")
	second := sys.OK(t, http.MethodGet, "/v1/accounts?pageSize=1&filter="+filter+"&pageToken="+url.QueryEscape(token), key, "")
	if ids(first, "accounts")[0] != id || len(ids(second, "accounts")) != 1 || str(second, "nextPageToken") != "" {
		t.Fatalf("name pages: %v then %v", first, second)
	}
	sys.Fails(t, http.MethodGet, "/v1/accounts?pageSize=1&pageToken="+url.QueryEscape(token), key, "", http.StatusBadRequest, "INVALID_ARGUMENT")

	// Update with a field mask; a stale etag is 409; the domain's unique claim moves.
	upd := sys.OK(t, http.MethodPatch, "/v1/accounts/"+id+"?updateMask=domain", key, `{"domain":"acme.test","industry":"x","etag":"1"}`)
	if str(upd, "domain") != "acme.test" || str(upd, "industry") != "software" || str(upd, "etag") != "2" {
		t.Fatalf("update = %v", upd)
	}
	sys.Fails(t, http.MethodPatch, "/v1/accounts/"+id+"?updateMask=domain", key, `{"domain":"x.test","etag":"1"}`, http.StatusConflict, "ABORTED")
	sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Reuses the old domain","domain":"acme.example"}`)
	sys.Fails(t, http.MethodPatch, "/v1/accounts/"+id+"?updateMask=ownerId", key, `{"ownerId":"no spaces"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPatch, "/v1/accounts/"+id+"?updateMask=etag", key, `{}`, http.StatusBadRequest, "INVALID_ARGUMENT")

	sys.Fails(t, http.MethodGet, "/v1/accounts/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodGet, "/v1/accounts/not-a-uuid", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/accounts", key, `{"domain":"no-name.example"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodDelete, "/v1/accounts/"+id+"?etag=1", key, "", http.StatusConflict, "ABORTED")
	sys.OK(t, http.MethodDelete, "/v1/accounts/"+id, key, "")
	sys.Fails(t, http.MethodGet, "/v1/accounts/"+id, key, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodDelete, "/v1/accounts/"+id, key, "", http.StatusNotFound, "NOT_FOUND")
}

// TestUpdateAccountWithoutAMask: over gRPC, an update without update_mask changes the fields the
// request's account sets and keeps the others (AIP-134), as a PATCH without updateMask does; one
// that sets none changes nothing: the account as it is, same etag, no event. A stale etag is still
// refused.
func TestUpdateAccountWithoutAMask(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	c, ctx := sys.sales(key)
	created, err := c.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{
		DisplayName: "Acme", Domain: "acme.example", OwnerId: "ada", Industry: "software"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetAccount().GetId()

	renamed, err := c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: id, DisplayName: "Acme Corp"}})
	if err != nil {
		t.Fatal(err)
	}
	want := proto.CloneOf(created.GetAccount())
	want.DisplayName, want.Etag, want.UpdateTime = "Acme Corp", "2", renamed.GetAccount().GetUpdateTime()
	if diff := cmp.Diff(want, renamed.GetAccount(), protocmp.Transform()); diff != "" {
		t.Fatalf("a rename without a mask: only the name changes (-want +got):\n%s", diff)
	}

	for _, etag := range []string{"", "2"} {
		same, err := c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: id, Etag: etag}})
		if err != nil || !proto.Equal(same.GetAccount(), renamed.GetAccount()) {
			t.Fatalf("nothing to update (etag %q): got %v, %v, want the account unchanged %v", etag, same, err, renamed.GetAccount())
		}
	}
	_, err = c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: id, Etag: "1"}})
	wantEtagMismatch(t, "nothing to update at a stale etag", err)

	// REST: a PATCH with an empty body and no updateMask is the same nothing, not a 400 for the
	// required display name.
	if got := sys.OK(t, http.MethodPatch, "/v1/accounts/"+id, key, `{}`); str(got, "etag") != "2" || str(got, "displayName") != "Acme Corp" || str(got, "domain") != "acme.example" {
		t.Fatalf("PATCH {} = %v, want the account unchanged at etag 2", got)
	}
	if got, err := c.GetAccount(ctx, &salesv1.GetAccountRequest{Id: id}); err != nil || !proto.Equal(got.GetAccount(), renamed.GetAccount()) {
		t.Fatalf("read back: %v, %v, want %v", got, err, renamed.GetAccount())
	}
	if n := len(sys.events(t, tenant, salesv1.EventAccountUpdated.Name)); n != 1 {
		t.Fatalf("%d account.updated events, want 1 (the rename)", n)
	}
}

func TestContactsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	account := str(sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Acme"}`), "id")

	ada := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"accountId":%q,"email":" Ada@Acme.example ","givenName":"Ada","ownerId":"bob"}`, account))
	id, customer := str(ada, "id"), str(ada, "customerId")
	if str(ada, "email") != "ada@acme.example" || customer == "" || customer == id {
		t.Fatalf("created contact = %v, want a normalized e-mail and a new customer id", ada)
	}
	// The e-mail is unique per tenant, trimmed and case-insensitive.
	details := sys.Fails(t, http.MethodPost, "/v1/contacts", key, `{"email":"ADA@acme.example"}`, http.StatusConflict, "ALREADY_EXISTS")
	if got := gatewaytest.ErrorMetadata(details)["existing_id"]; got != id {
		t.Fatalf("e-mail conflict names %v, want %s", got, id)
	}
	consumer := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"carol@home.example"}`)
	if str(consumer, "accountId") != "" || str(consumer, "customerId") == customer {
		t.Fatalf("B2C contact = %v", consumer)
	}
	sys.Fails(t, http.MethodPost, "/v1/contacts", key, `{"email":"not an address"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/contacts", key, `{"email":"x@y.example","accountId":"0190a0c1-0000-7000-8000-000000000000"}`, http.StatusBadRequest, "INVALID_ARGUMENT")

	byAccount := sys.OK(t, http.MethodGet, "/v1/contacts?filter="+url.QueryEscape(fmt.Sprintf(`account_id = %q`, account)), key, "")
	if got := ids(byAccount, "contacts"); !slices.Equal(got, []string{id}) {
		t.Fatalf("contacts of the account = %v, want [%s]", got, id)
	}
	if got := ids(sys.OK(t, http.MethodGet, "/v1/contacts", key, ""), "contacts"); len(got) != 2 || got[0] != str(consumer, "id") {
		t.Fatalf("all contacts newest first = %v", got)
	}

	// An account with contacts cannot be deleted; once they are gone it can.
	sys.Fails(t, http.MethodDelete, "/v1/accounts/"+account, key, "", http.StatusBadRequest, "FAILED_PRECONDITION")
	upd := sys.OK(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=email,phone", key, `{"email":"ada@new.example","phone":"+44 20 1234","etag":"1"}`)
	if str(upd, "email") != "ada@new.example" || str(upd, "customerId") != customer || str(upd, "givenName") != "Ada" {
		t.Fatalf("update = %v", upd)
	}
	sys.Fails(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=email", key, `{"email":"carol@home.example"}`, http.StatusConflict, "ALREADY_EXISTS")
	sys.Fails(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=givenName", key, `{"givenName":"A","etag":"1"}`, http.StatusConflict, "ABORTED")
	sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"ada@acme.example"}`) // the old e-mail is free again
	sys.Fails(t, http.MethodDelete, "/v1/contacts/"+id+"?etag=1", key, "", http.StatusConflict, "ABORTED")
	sys.OK(t, http.MethodDelete, "/v1/contacts/"+id, key, "")
	sys.Fails(t, http.MethodGet, "/v1/contacts/"+id, key, "", http.StatusNotFound, "NOT_FOUND")
	sys.OK(t, http.MethodDelete, "/v1/accounts/"+account, key, "")
}

// TestAccountDeleteRacesContactCreation: a contact created while its account is deleted
// either lands first (and the delete is refused) or is refused itself; never a contact of a
// deleted account.
func TestAccountDeleteRacesContactCreation(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)
	for i := range 10 {
		account := str(sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Racy"}`), "id")
		var wg sync.WaitGroup
		var deleted, created gatewaytest.Response
		wg.Go(func() { deleted = sys.Do(t, http.MethodDelete, "/v1/accounts/"+account, key, nil) })
		wg.Go(func() {
			created = sys.Do(t, http.MethodPost, "/v1/contacts", key, fmt.Appendf(nil, `{"email":"racer%d@example.com","accountId":%q}`, i, account))
		})
		wg.Wait()
		if (deleted.Status == http.StatusOK) == (created.Status == http.StatusOK) {
			t.Fatalf("round %d: delete %d %s, contact %d %s: exactly one must succeed", i, deleted.Status, deleted.Body, created.Status, created.Body)
		}
	}
}
