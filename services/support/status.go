package support

import (
	"slices"

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
