package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// TestContactEmailEditKeepsOnePerson: a contact's new e-mail joins its customer in marketing's
// registry before the contact is written, so a lead captured with it is the same customer; an
// e-mail the registry has for another customer is 409 CUSTOMER_EMAIL_EXISTS naming them and an
// e-mail of another contact 409 CONTACT_EMAIL_EXISTS, both writing nothing, over REST and gRPC.
func TestContactEmailEditKeepsOnePerson(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	client, ctx := sys.sales(key)
	contact := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"nia@example.com","givenName":"Nia"}`)
	id, customer := str(contact, "id"), str(contact, "customerId")

	// REST: the edit, then a capture of the new e-mail is the contact's customer.
	edited := sys.OK(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=email", key, `{"email":" Nia@New.example "}`)
	if str(edited, "email") != "nia@new.example" || str(edited, "customerId") != customer {
		t.Fatalf("e-mail edit: %v, want nia@new.example of customer %s", edited, customer)
	}
	if lead := sys.leads.add(tenant, &marketingv1.Lead{Email: "nia@new.example"}); lead.GetCustomerId() != customer {
		t.Fatalf("a lead captured with the new e-mail has customer %s, want the contact's %s", lead.GetCustomerId(), customer)
	}
	if got := sys.leads.customerOf(tenant, "nia@example.com"); got != customer {
		t.Fatalf("the old e-mail's customer is %q, want it kept for %s", got, customer)
	}

	// gRPC: the same edit through the other door.
	got, err := client.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: id, Email: "NIA@third.example"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
	if err != nil || got.GetContact().GetEmail() != "nia@third.example" || got.GetContact().GetCustomerId() != customer {
		t.Fatalf("gRPC e-mail edit: %v %v", got, err)
	}
	if owner := sys.leads.customerOf(tenant, "nia@third.example"); owner != customer {
		t.Fatalf("registry has nia@third.example for %q, want %s", owner, customer)
	}

	// Refusals: an e-mail of another customer (a lead's, no contact has it), of another contact.
	other := sys.leads.add(tenant, &marketingv1.Lead{Email: "omar@example.com"}).GetCustomerId()
	neighbour := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"pia@example.com"}`)
	before := sys.OK(t, http.MethodGet, "/v1/contacts/"+id, key, "")
	keys, events := sys.Suite.Footprint(t, "sales", tenant)
	details := sys.Fails(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=email", key, `{"email":"Omar@example.com"}`,
		http.StatusConflict, "ALREADY_EXISTS")
	if meta := gatewaytest.ErrorMetadata(details); meta["customer_id"] != other {
		t.Fatalf("REST refusal names %v, want customer %s", meta, other)
	}
	_, err = client.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: id, Email: "omar@example.com"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
	if reason, meta := errorInfo(err); status.Code(err) != codes.AlreadyExists || reason != "CUSTOMER_EMAIL_EXISTS" || meta["customer_id"] != other {
		t.Fatalf("gRPC edit to another customer's e-mail: %v (%s %v), want ALREADY_EXISTS CUSTOMER_EMAIL_EXISTS naming %s", err, reason, meta, other)
	}
	details = sys.Fails(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=email", key, `{"email":"pia@example.com"}`,
		http.StatusConflict, "ALREADY_EXISTS")
	if meta := gatewaytest.ErrorMetadata(details); meta["existing_id"] != str(neighbour, "id") {
		t.Fatalf("edit to another contact's e-mail names %v, want contact %s", meta, str(neighbour, "id"))
	}
	if after := sys.OK(t, http.MethodGet, "/v1/contacts/"+id, key, ""); str(after, "etag") != str(before, "etag") || str(after, "email") != "nia@third.example" {
		t.Fatalf("a refused edit changed the contact: %v", after)
	}
	if k, e := sys.Suite.Footprint(t, "sales", tenant); k != keys || e != events {
		t.Fatalf("refused edits wrote: %d keys %d events, want %d and %d", k, e, keys, events)
	}
	if owner := sys.leads.customerOf(tenant, "omar@example.com"); owner != other {
		t.Fatalf("omar@ belongs to %q after the refusal, want %s", owner, other)
	}
	if owner := sys.leads.customerOf(tenant, "pia@example.com"); owner != str(neighbour, "customerId") {
		t.Fatalf("pia@ belongs to %q after the refusal, want %s", owner, str(neighbour, "customerId"))
	}
}

// TestContactEmailEditsRace: two people's contacts edited to one e-mail at once: the registry's
// claim decides, one edit wins and the other is refused, and the e-mail's contact and its customer
// in the registry agree.
func TestContactEmailEditsRace(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	client, ctx := sys.sales(key)
	for round := range 4 {
		a := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"a%d@example.com"}`, round))
		b := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"b%d@example.com"}`, round))
		email := fmt.Sprintf("both%d@example.com", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []map[string]any{a, b} {
			wg.Go(func() {
				_, errs[i] = client.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: str(c, "id"), Email: email},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
			})
		}
		wg.Wait()
		codesGot := []codes.Code{status.Code(errs[0]), status.Code(errs[1])}
		slices.Sort(codesGot)
		if !slices.Equal(codesGot, []codes.Code{codes.OK, codes.AlreadyExists}) {
			t.Fatalf("round %d: two edits to one e-mail: %v, want one OK and one ALREADY_EXISTS", round, errs)
		}
		winner := a
		if errs[0] != nil {
			winner = b
		}
		list := sys.OK(t, http.MethodGet, `/v1/contacts?filter=email%3D%22`+email+`%22`, key, "")
		if got := ids(list, "contacts"); !slices.Equal(got, []string{str(winner, "id")}) {
			t.Fatalf("round %d: contacts with %s: %v, want the winner %s", round, email, got, str(winner, "id"))
		}
		if owner := sys.leads.customerOf(tenant, email); owner != str(winner, "customerId") {
			t.Fatalf("round %d: registry has %s for %q, want the winner's customer %s", round, email, owner, str(winner, "customerId"))
		}
	}
}

// errorInfo is a gRPC error's reason and metadata.
func errorInfo(err error) (string, map[string]string) {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return "", nil
}
