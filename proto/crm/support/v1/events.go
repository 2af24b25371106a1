package supportv1

import eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"

// The event types support publishes on its stream, each with its payload (support_events.proto).
var (
	EventTicketCreated     = eventv1.Type[*TicketCreated]{Name: "support.ticket.created"}
	EventTicketUpdated     = eventv1.Type[*TicketChanged]{Name: "support.ticket.updated"}
	EventTicketAssigned    = eventv1.Type[*TicketChanged]{Name: "support.ticket.assigned"}
	EventTicketOpened      = eventv1.Type[*TicketChanged]{Name: "support.ticket.opened"}
	EventTicketPended      = eventv1.Type[*TicketChanged]{Name: "support.ticket.pended"}
	EventTicketHeld        = eventv1.Type[*TicketChanged]{Name: "support.ticket.held"}
	EventTicketSolved      = eventv1.Type[*TicketChanged]{Name: "support.ticket.solved"}
	EventTicketReopened    = eventv1.Type[*TicketChanged]{Name: "support.ticket.reopened"}
	EventTicketClosed      = eventv1.Type[*TicketChanged]{Name: "support.ticket.closed"}
	EventTicketSlaBreached = eventv1.Type[*TicketSlaBreached]{Name: "support.ticket.sla_breached"}

	EventCommentAdded = eventv1.Type[*CommentAdded]{Name: "support.comment.added"}
	EventCsatRated    = eventv1.Type[*CsatRated]{Name: "support.csat.rated"}
	EventNpsRecorded  = eventv1.Type[*NpsRecorded]{Name: "support.nps.recorded"}

	EventSlaPolicyUpdated = eventv1.Type[*SupportConfigChanged]{Name: "support.sla_policy.updated"}
	EventSettingsUpdated  = eventv1.Type[*SupportConfigChanged]{Name: "support.settings.updated"}

	// Bulk reads, recorded for the audit log (crm.event.v1.Exported).
	EventTicketsExported = eventv1.Type[*eventv1.Exported]{Name: "support.ticket.exported"}
)
