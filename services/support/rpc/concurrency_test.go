package rpc_test

import (
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// TestSupportConcurrentAgents: agents solve, reassign and reply to one ticket at once. Exactly one
// solve wins, every reply lands once, exactly one of them is the first response, and the events
// and statistics agree with the ticket.
func TestSupportConcurrentAgents(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	c, ctx := sys.support(key)
	created, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "Busy"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTicket().GetId()
	if _, err := c.OpenTicket(ctx, &supportv1.OpenTicketRequest{Id: id}); err != nil {
		t.Fatal(err)
	}

	const replies, solvers = 20, 2
	var wg sync.WaitGroup
	solved := make(chan error, solvers)
	replyErrs := make(chan error, replies)
	for i := range solvers {
		wg.Go(func() {
			_, err := c.SolveTicket(ctx, &supportv1.SolveTicketRequest{Id: id})
			solved <- err
			_, _ = c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: fmt.Sprintf("agent-%d", i)})
		})
	}
	for i := range replies {
		wg.Go(func() {
			_, err := c.AddComment(ctx, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{Body: fmt.Sprintf("reply %d", i)}})
			replyErrs <- err
		})
	}
	wg.Wait()
	close(solved)
	close(replyErrs)
	wins := 0
	for err := range solved {
		switch status.Code(err) {
		case codes.OK:
			wins++
		case codes.FailedPrecondition:
		default:
			t.Errorf("solve: %v", err)
		}
	}
	for err := range replyErrs {
		if err != nil {
			t.Errorf("reply: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d solves won, want 1", wins)
	}

	tk, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if tk.GetTicket().GetStatus() != supportv1.TicketStatus_TICKET_STATUS_SOLVED || tk.GetTicket().GetFirstResponse().GetMetTime() == nil {
		t.Fatalf("ticket = %v", tk.GetTicket())
	}
	comments, err := c.ListComments(ctx, &supportv1.ListCommentsRequest{TicketId: id})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, cm := range comments.GetComments() {
		seen[cm.GetBody()] = true
	}
	if len(comments.GetComments()) != replies || len(seen) != replies {
		t.Fatalf("%d comments (%d distinct), want %d", len(comments.GetComments()), len(seen), replies)
	}
	firsts := 0
	added := sys.events(t, tenant, "support.comment.added")
	for _, ev := range added {
		p := &supportv1.CommentAdded{}
		if err := ev.GetPayload().UnmarshalTo(p); err != nil {
			t.Fatal(err)
		}
		if p.GetFirstResponse() {
			firsts++
		}
	}
	if len(added) != replies || firsts != 1 || len(sys.events(t, tenant, "support.ticket.solved")) != 1 {
		t.Fatalf("%d comment events (%d first responses), %d solved events; want %d, 1, 1",
			len(added), firsts, len(sys.events(t, tenant, "support.ticket.solved")), replies)
	}
	st, err := c.GetSupportStats(ctx, &supportv1.GetSupportStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.GetStats(); s.GetFirstResponse().GetMet() != 1 || s.GetResolution().GetMet() != 1 || s.GetBacklogTotal() != 0 ||
		len(s.GetBacklog()) != 1 || s.GetBacklog()[0].GetStatus() != supportv1.TicketStatus_TICKET_STATUS_SOLVED || s.GetBacklog()[0].GetCount() != 1 {
		t.Fatalf("stats = %v", s)
	}
}
