package rpc_test

import (
	"net/http"
	"testing"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// TestAnAgentReplyOpensANewTicket: an internal note or the customer's own comment leaves a NEW
// ticket NEW; an agent's public reply moves it to OPEN (with support.ticket.opened) in the same
// commit that stops the first-response clock. Over REST, then over gRPC.
func TestAnAgentReplyOpensANewTicket(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	ticket := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Cannot log in"}`)
	id := ticket["id"].(string)
	status := func() any { return sys.OK(t, http.MethodGet, "/v1/tickets/"+id, key, "")["status"] }
	for _, body := range []string{`{"body":"note","internal":true}`, `{"body":"still broken","customerAuthored":true}`} {
		sys.OK(t, http.MethodPost, "/v1/tickets/"+id+"/comments", key, body)
		if got := status(); got != "TICKET_STATUS_NEW" {
			t.Fatalf("after %s: %v, want NEW", body, got)
		}
	}
	sys.OK(t, http.MethodPost, "/v1/tickets/"+id+"/comments", key, `{"body":"Looking into it"}`)
	got := sys.OK(t, http.MethodGet, "/v1/tickets/"+id, key, "")
	if got["status"] != "TICKET_STATUS_OPEN" || got["firstResponse"].(map[string]any)["metTime"] == nil {
		t.Fatalf("after the agent's reply: %v, want OPEN with the first response met", got)
	}
	if n := len(sys.events(t, tenant, "support.ticket.opened")); n != 1 {
		t.Errorf("%d support.ticket.opened events, want 1", n)
	}

	client, ctx := sys.support(key)
	created, err := client.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "Invoice"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddComment(ctx, &supportv1.AddCommentRequest{TicketId: created.GetTicket().GetId(), Comment: &supportv1.Comment{Body: "On it"}}); err != nil {
		t.Fatal(err)
	}
	after, err := client.GetTicket(ctx, &supportv1.GetTicketRequest{Id: created.GetTicket().GetId()})
	if err != nil || after.GetTicket().GetStatus() != supportv1.TicketStatus_TICKET_STATUS_OPEN {
		t.Fatalf("after a reply over gRPC: %v %v, want OPEN", after.GetTicket().GetStatus(), err)
	}
}
