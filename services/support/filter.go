package support

import (
	"github.com/crmcycle/crm/pkg/filter"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// maxAssigneeLen bounds an assignee id, as AssignTicket does.
const maxAssigneeLen = 128

// ticketList is what ListTickets serves: one index per field, one field at a time. Only breached
// tickets are indexed, so sla_breached takes = true or != false.
var ticketList = filter.List{Fields: []filter.Field{
	{Name: "status", Ops: []filter.Operator{filter.Equal}},
	{Name: "priority", Ops: []filter.Operator{filter.Equal}},
	{Name: "assignee_id", Ops: []filter.Operator{filter.Equal}},
	{Name: "customer_id", Ops: []filter.Operator{filter.Equal}},
	{Name: "product_id", Ops: []filter.Operator{filter.Equal}},
	{Name: "sla_breached", Ops: []filter.Operator{filter.Equal, filter.NotEqual}},
}}

// ParseTicketFilter maps a ListTickets filter to the index that answers it.
func ParseTicketFilter(text string) (TicketIndex, error) {
	terms, err := ticketList.Parse(text)
	if err != nil || len(terms) == 0 {
		return TicketIndex{}, err
	}
	var ix TicketIndex
	var v int32
	switch t := terms[0]; t.Field {
	case "status":
		v, err = t.Enum(supportv1.TicketStatus_value)
		ix.Status = supportv1.TicketStatus(v)
	case "priority":
		v, err = t.Enum(supportv1.TicketPriority_value)
		ix.Priority = supportv1.TicketPriority(v)
	case "assignee_id":
		ix.Assignee, err = t.Text()
		if err == nil && len(ix.Assignee) > maxAssigneeLen {
			err = t.Invalid("an assignee id has at most %d bytes", maxAssigneeLen)
		}
	case "customer_id":
		ix.Customer, err = t.ID()
	case "product_id":
		ix.Product, err = t.ID()
	case "sla_breached":
		ix.Breached, err = t.Bool()
		if err == nil && !ix.Breached {
			err = t.Invalid("only breached tickets are indexed: use sla_breached = true")
		}
	}
	if err != nil {
		return TicketIndex{}, err
	}
	return ix, nil
}

// npsList is what ListNpsResponses serves: the tenant's answers, or one customer's.
var npsList = filter.List{Fields: []filter.Field{
	{Name: "customer_id", Ops: []filter.Operator{filter.Equal}},
}}

// ParseNpsFilter maps a ListNpsResponses filter to the customer whose answers it lists ("" for
// every answer of the tenant).
func ParseNpsFilter(text string) (customer string, err error) {
	terms, err := npsList.Parse(text)
	if err != nil || len(terms) == 0 {
		return "", err
	}
	return terms[0].ID()
}
