package support

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Move is a status move a ticket can make, named by its custom method (:open, :pend, ...).
type Move string

// The moves.
const (
	MoveOpen   Move = "open"
	MovePend   Move = "pend"
	MoveHold   Move = "hold"
	MoveSolve  Move = "solve"
	MoveReopen Move = "reopen"
	MoveClose  Move = "close"
)

// move is where a move may start and where it ends, and the event it makes.
type move struct {
	from  []supportv1.TicketStatus
	to    supportv1.TicketStatus
	event eventv1.Type[*supportv1.TicketChanged]
}

// moves is the status machine of DESIGN.md §5: NEW -> OPEN -> PENDING <-> OPEN -> SOLVED -> CLOSED,
// ON_HOLD from OPEN and back, SOLVED -> OPEN by reopen; nothing leaves CLOSED.
var moves = map[Move]move{
	MoveOpen: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_NEW,
		supportv1.TicketStatus_TICKET_STATUS_PENDING, supportv1.TicketStatus_TICKET_STATUS_ON_HOLD},
		to: supportv1.TicketStatus_TICKET_STATUS_OPEN, event: supportv1.EventTicketOpened},
	MovePend: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_OPEN},
		to: supportv1.TicketStatus_TICKET_STATUS_PENDING, event: supportv1.EventTicketPended},
	MoveHold: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_OPEN},
		to: supportv1.TicketStatus_TICKET_STATUS_ON_HOLD, event: supportv1.EventTicketHeld},
	MoveSolve: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_OPEN},
		to: supportv1.TicketStatus_TICKET_STATUS_SOLVED, event: supportv1.EventTicketSolved},
	MoveReopen: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_SOLVED},
		to: supportv1.TicketStatus_TICKET_STATUS_OPEN, event: supportv1.EventTicketReopened},
	MoveClose: {from: []supportv1.TicketStatus{supportv1.TicketStatus_TICKET_STATUS_SOLVED},
		to: supportv1.TicketStatus_TICKET_STATUS_CLOSED, event: supportv1.EventTicketClosed},
}

// allowed reports whether a ticket in status from may make move m.
func (m Move) allowed(from supportv1.TicketStatus) bool {
	mv, ok := moves[m]
	return ok && slices.Contains(mv.from, from)
}

// refusedMove is ErrTicketStatus for move m from status from, saying which moves the status allows.
func refusedMove(from supportv1.TicketStatus, m Move) *apierr.Error {
	var allowed []string
	for _, name := range []Move{MoveOpen, MovePend, MoveHold, MoveSolve, MoveReopen, MoveClose} {
		if name.allowed(from) {
			allowed = append(allowed, ":"+string(name))
		}
	}
	e := ErrTicketStatus.With("move", from.String()+" -> "+string(m))
	if len(allowed) == 0 {
		e.Message = fmt.Sprintf("cannot :%s a %s ticket: a closed ticket never changes; open a new one", m, from)
		return e
	}
	e.Message = fmt.Sprintf("cannot :%s a %s ticket; it allows %s", m, from, strings.Join(allowed, ", "))
	if from == supportv1.TicketStatus_TICKET_STATUS_NEW {
		e.Message += " (assigning it or an agent's public reply opens it too)"
	}
	return e
}

// refusedStatus is ErrTicketStatus for doing what to a ticket in status from, and what it needs.
func refusedStatus(from supportv1.TicketStatus, what, needs string) *apierr.Error {
	e := ErrTicketStatus.With("status", from.String())
	e.Message = fmt.Sprintf("cannot %s a %s ticket: %s", what, from, needs)
	return e
}

// closedNeeds is what refusedStatus says of a CLOSED ticket.
const closedNeeds = "a closed ticket never changes; open a new one"
