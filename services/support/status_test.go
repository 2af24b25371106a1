package support_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// TestStatusMachine tries every move from every status on a stored ticket: the legal ones land
// where DESIGN.md §5 says, the others are FAILED_PRECONDITION and change nothing.
func TestStatusMachine(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	const (
		nw, open, pending, hold = supportv1.TicketStatus_TICKET_STATUS_NEW, supportv1.TicketStatus_TICKET_STATUS_OPEN,
			supportv1.TicketStatus_TICKET_STATUS_PENDING, supportv1.TicketStatus_TICKET_STATUS_ON_HOLD
		solved, closed = supportv1.TicketStatus_TICKET_STATUS_SOLVED, supportv1.TicketStatus_TICKET_STATUS_CLOSED
		illegal        = supportv1.TicketStatus_TICKET_STATUS_UNSPECIFIED
	)
	// How to reach each status from NEW.
	paths := map[supportv1.TicketStatus][]support.Move{
		nw: nil, open: {support.MoveOpen}, pending: {support.MoveOpen, support.MovePend},
		hold: {support.MoveOpen, support.MoveHold}, solved: {support.MoveOpen, support.MoveSolve},
		closed: {support.MoveOpen, support.MoveSolve, support.MoveClose},
	}
	want := map[supportv1.TicketStatus]map[support.Move]supportv1.TicketStatus{
		nw:      {support.MoveOpen: open, support.MovePend: illegal, support.MoveHold: illegal, support.MoveSolve: illegal, support.MoveReopen: illegal, support.MoveClose: illegal},
		open:    {support.MoveOpen: illegal, support.MovePend: pending, support.MoveHold: hold, support.MoveSolve: solved, support.MoveReopen: illegal, support.MoveClose: illegal},
		pending: {support.MoveOpen: open, support.MovePend: illegal, support.MoveHold: illegal, support.MoveSolve: illegal, support.MoveReopen: illegal, support.MoveClose: illegal},
		hold:    {support.MoveOpen: open, support.MovePend: illegal, support.MoveHold: illegal, support.MoveSolve: illegal, support.MoveReopen: illegal, support.MoveClose: illegal},
		solved:  {support.MoveOpen: illegal, support.MovePend: illegal, support.MoveHold: illegal, support.MoveSolve: illegal, support.MoveReopen: open, support.MoveClose: closed},
		closed:  {support.MoveOpen: illegal, support.MovePend: illegal, support.MoveHold: illegal, support.MoveSolve: illegal, support.MoveReopen: illegal, support.MoveClose: illegal},
	}
	for from, byMove := range want {
		for m, to := range byMove {
			t.Run(from.String()+"/"+string(m), func(t *testing.T) {
				tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_NORMAL)
				if len(paths[from]) > 0 {
					tk = f.move(t, tk.GetId(), paths[from]...)
				}
				got, err := f.tickets.Move(ctx, f.tenant, tk.GetId(), m, "")
				if to == illegal {
					if !errors.Is(err, support.ErrTicketStatus) {
						t.Fatalf("got %v, %v; want ErrTicketStatus", got.GetStatus(), err)
					}
					// The refusal names the status and the moves it allows, as the table above has them.
					var allowed []string
					for _, name := range []support.Move{support.MoveOpen, support.MovePend, support.MoveHold, support.MoveSolve, support.MoveReopen, support.MoveClose} {
						if byMove[name] != illegal {
							allowed = append(allowed, ":"+string(name))
						}
					}
					msg := err.Error()
					if !strings.Contains(msg, from.String()) || (len(allowed) > 0 && !strings.Contains(msg, "allows "+strings.Join(allowed, ", "))) ||
						(len(allowed) == 0 && !strings.Contains(msg, "never changes")) {
						t.Errorf("refusal %q: want it to name %v and the moves %v", msg, from, allowed)
					}
					if after := f.get(t, tk.GetId()); after.GetEtag() != tk.GetEtag() || after.GetStatus() != from {
						t.Fatalf("refused move changed the ticket: %v etag %s, want %v etag %s", after.GetStatus(), after.GetEtag(), from, tk.GetEtag())
					}
					return
				}
				if err != nil || got.GetStatus() != to {
					t.Fatalf("got %v, %v; want %v", got.GetStatus(), err, to)
				}
			})
		}
	}

	// Assigning opens a NEW ticket and is refused on a CLOSED one; rating needs SOLVED, once.
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_LOW)
	if got, err := f.tickets.Assign(ctx, f.tenant, tk.GetId(), "agent-1", ""); err != nil || got.GetStatus() != open || got.GetAssigneeId() != "agent-1" {
		t.Fatalf("assign NEW: %v %v, want OPEN for agent-1", got, err)
	}
	if _, err := f.tickets.Rate(ctx, f.tenant, tk.GetId(), 5, "", ""); !errors.Is(err, support.ErrTicketStatus) {
		t.Fatalf("rate OPEN: %v, want ErrTicketStatus", err)
	}
	f.move(t, tk.GetId(), support.MoveSolve)
	if got, err := f.tickets.Rate(ctx, f.tenant, tk.GetId(), 4, "quick", ""); err != nil || got.GetCsat().GetScore() != 4 {
		t.Fatalf("rate SOLVED: %v %v", got, err)
	}
	if _, err := f.tickets.Rate(ctx, f.tenant, tk.GetId(), 1, "", ""); !errors.Is(err, support.ErrAlreadyRated) {
		t.Fatalf("second rating: %v, want ErrAlreadyRated", err)
	}
	f.move(t, tk.GetId(), support.MoveClose)
	if _, err := f.tickets.Assign(ctx, f.tenant, tk.GetId(), "agent-2", ""); !errors.Is(err, support.ErrTicketStatus) {
		t.Fatalf("assign CLOSED: %v, want ErrTicketStatus", err)
	}
	if _, err := f.tickets.AddComment(ctx, f.tenant, tk.GetId(), &support.Comment{Body: "late"}, "agent-2"); !errors.Is(err, support.ErrTicketStatus) {
		t.Fatalf("comment on CLOSED: %v, want ErrTicketStatus", err)
	}
}
