package rpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/servicetest"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// ticketCall calls one of the ticket methods that take an etag (If-Match) on ticket id.
type ticketCall func(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error

// etagMethods are the ticket methods with an etag on their request, each from a status that allows
// it (reached by the moves after), and the status it leaves the ticket in.
var etagMethods = []struct {
	name string
	path []ticketCall
	call ticketCall
	want supportv1.TicketStatus
}{
	{"assign", nil, assignTo("agent-9"), supportv1.TicketStatus_TICKET_STATUS_OPEN},
	{"open", nil, openTicket, supportv1.TicketStatus_TICKET_STATUS_OPEN},
	{"pend", []ticketCall{openTicket}, pendTicket, supportv1.TicketStatus_TICKET_STATUS_PENDING},
	{"hold", []ticketCall{openTicket}, holdTicket, supportv1.TicketStatus_TICKET_STATUS_ON_HOLD},
	{"solve", []ticketCall{openTicket}, solveTicket, supportv1.TicketStatus_TICKET_STATUS_SOLVED},
	{"reopen", []ticketCall{openTicket, solveTicket}, reopenTicket, supportv1.TicketStatus_TICKET_STATUS_OPEN},
	{"close", []ticketCall{openTicket, solveTicket}, closeTicket, supportv1.TicketStatus_TICKET_STATUS_CLOSED},
	{"rate", []ticketCall{openTicket, solveTicket}, rateTicket, supportv1.TicketStatus_TICKET_STATUS_SOLVED},
}

func assignTo(agent string) ticketCall {
	return func(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
		_, err := c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: agent, Etag: etag})
		return err
	}
}

func openTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.OpenTicket(ctx, &supportv1.OpenTicketRequest{Id: id, Etag: etag})
	return err
}

func pendTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.PendTicket(ctx, &supportv1.PendTicketRequest{Id: id, Etag: etag})
	return err
}

func holdTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.HoldTicket(ctx, &supportv1.HoldTicketRequest{Id: id, Etag: etag})
	return err
}

func solveTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.SolveTicket(ctx, &supportv1.SolveTicketRequest{Id: id, Etag: etag})
	return err
}

func reopenTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.ReopenTicket(ctx, &supportv1.ReopenTicketRequest{Id: id, Etag: etag})
	return err
}

func closeTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.CloseTicket(ctx, &supportv1.CloseTicketRequest{Id: id, Etag: etag})
	return err
}

func rateTicket(ctx context.Context, c supportv1.SupportServiceClient, id, etag string) error {
	_, err := c.RateTicket(ctx, &supportv1.RateTicketRequest{Id: id, Score: 5, Etag: etag})
	return err
}

// ticketAt creates a ticket and makes the calls of path on it (without an etag).
func ticketAt(t *testing.T, ctx context.Context, c supportv1.SupportServiceClient, path []ticketCall) *supportv1.Ticket {
	t.Helper()
	created, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{
		Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "If-Match"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range path {
		if err := call(ctx, c, created.GetTicket().GetId(), ""); err != nil {
			t.Fatal(err)
		}
	}
	return getTicket(t, ctx, c, created.GetTicket().GetId())
}

func getTicket(t *testing.T, ctx context.Context, c supportv1.SupportServiceClient, id string) *supportv1.Ticket {
	t.Helper()
	got, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return got.GetTicket()
}

func isEtagMismatch(err error) bool {
	return status.Code(err) == codes.Aborted && hasReason(err, "ETAG_MISMATCH")
}

// TestTicketMethodsHonourTheEtag: each ticket method with an etag on its request (REST: If-Match)
// refuses a stale one with ABORTED ETAG_MISMATCH, writing nothing, and makes its change with the
// current one. A stale etag is reported before the status machine's refusal.
func TestTicketMethodsHonourTheEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	c, ctx := sys.support(key)
	for _, m := range etagMethods {
		t.Run(m.name, func(t *testing.T) {
			tk := ticketAt(t, ctx, c, m.path)
			stale := "1" // the created ticket's; an edit since makes it stale whatever the path was
			update := &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: tk.GetId(), Tags: []string{"x"}},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tags"}}}
			if _, err := c.UpdateTicket(ctx, update); err != nil {
				t.Fatal(err)
			}
			tk = getTicket(t, ctx, c, tk.GetId())
			keys, events := sys.Suite.Footprint(t, "support", tenant)
			if err := m.call(ctx, c, tk.GetId(), stale); !isEtagMismatch(err) {
				t.Fatalf("stale etag %s (current %s): %v, want ABORTED ETAG_MISMATCH", stale, tk.GetEtag(), err)
			}
			after := getTicket(t, ctx, c, tk.GetId())
			after.FirstResponse, after.Resolution = tk.GetFirstResponse(), tk.GetResolution() // remaining time moves on
			if !proto.Equal(after, tk) {
				t.Fatalf("a stale etag changed the ticket:\n%v\nwas\n%v", after, tk)
			}
			if k, e := sys.Suite.Footprint(t, "support", tenant); k != keys || e != events {
				t.Fatalf("a stale etag wrote %d keys and %d events", k-keys, e-events)
			}

			if err := m.call(ctx, c, tk.GetId(), tk.GetEtag()); err != nil {
				t.Fatalf("current etag: %v", err)
			}
			if got := getTicket(t, ctx, c, tk.GetId()); got.GetStatus() != m.want || got.GetEtag() != etag.Next(tk.GetEtag()) {
				t.Fatalf("after the current etag: %v at %s, want %v at %s", got.GetStatus(), got.GetEtag(), m.want, etag.Next(tk.GetEtag()))
			}
		})
	}

	// On a CLOSED ticket every method is refused: with a stale etag it is the etag that is reported.
	closed := ticketAt(t, ctx, c, []ticketCall{openTicket, solveTicket, closeTicket})
	for _, m := range etagMethods {
		if err := m.call(ctx, c, closed.GetId(), "1"); !isEtagMismatch(err) {
			t.Errorf("%s of a CLOSED ticket with a stale etag: %v, want ABORTED ETAG_MISMATCH", m.name, err)
		}
		if err := m.call(ctx, c, closed.GetId(), closed.GetEtag()); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s of a CLOSED ticket with its etag: %v, want FAILED_PRECONDITION", m.name, err)
		}
	}
}

// TestTicketEtagRace: two changes sent at once with the same current etag on one ticket: exactly
// one wins, the other is ABORTED ETAG_MISMATCH, and the ticket is the winner's.
func TestTicketEtagRace(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", supportScopes...)
	c, ctx := sys.support(key)
	type contender struct {
		call ticketCall
		won  func(*supportv1.Ticket) bool
	}
	assigned := func(agent string) contender {
		return contender{assignTo(agent), func(tk *supportv1.Ticket) bool {
			return tk.GetAssigneeId() == agent && tk.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_OPEN
		}}
	}
	held := contender{holdTicket, func(tk *supportv1.Ticket) bool {
		return tk.GetAssigneeId() == "" && tk.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_ON_HOLD
	}}
	// Two assigns (the same edit), and a move against an assign (a move and an edit).
	pairs := [][2]contender{{assigned("agent-a"), assigned("agent-b")}, {held, assigned("agent-c")}}
	for round := range 20 {
		pair := pairs[round%len(pairs)]
		tk := ticketAt(t, ctx, c, []ticketCall{openTicket})
		call := func(ct contender) func() error {
			return func() error { return ct.call(ctx, c, tk.GetId(), tk.GetEtag()) }
		}
		results := servicetest.AtOnce(call(pair[0]), call(pair[1]))
		winner := -1
		for i, err := range results {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err != nil && !isEtagMismatch(err):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if winner < 0 || results[1-winner] == nil {
			t.Fatalf("round %d: %v, want one success and one ABORTED ETAG_MISMATCH", round, results)
		}
		got := getTicket(t, ctx, c, tk.GetId())
		if got.GetEtag() != etag.Next(tk.GetEtag()) || !pair[winner].won(got) || pair[1-winner].won(got) {
			t.Fatalf("round %d: ticket %v at etag %s is not the change of the winner (%d) to etag %s",
				round, got, got.GetEtag(), winner, tk.GetEtag())
		}
	}
}
