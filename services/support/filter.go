package support

import (
	"regexp"
	"strings"

	"github.com/google/uuid"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// filterPattern is the one AIP-160 comparison the ticket indexes answer: <field> = <value>, the
// value optionally quoted.
var filterPattern = regexp.MustCompile(`^\s*(status|priority|assignee_id|customer_id|product_id|sla_breached)\s*=\s*("[^"]*"|[^\s"]+)\s*$`)

// maxAssigneeLen bounds an assignee id, as AssignTicket does.
const maxAssigneeLen = 128

// ParseTicketFilter parses a ListTickets filter into the index that answers it.
func ParseTicketFilter(filter string) (TicketIndex, error) {
	if strings.TrimSpace(filter) == "" {
		return TicketIndex{}, nil
	}
	m := filterPattern.FindStringSubmatch(filter)
	if m == nil {
		return TicketIndex{}, ErrInvalidFilter
	}
	value := strings.Trim(m[2], `"`)
	var ix TicketIndex
	ok := true
	switch m[1] {
	case "status":
		ix.Status = supportv1.TicketStatus(supportv1.TicketStatus_value[value])
		ok = ix.Status != 0
	case "priority":
		ix.Priority = supportv1.TicketPriority(supportv1.TicketPriority_value[value])
		ok = ix.Priority != 0
	case "assignee_id":
		ix.Assignee = value
		ok = value != "" && len(value) <= maxAssigneeLen
	case "customer_id":
		ix.Customer = value
		ok = uuid.Validate(value) == nil
	case "product_id":
		ix.Product = value
		ok = uuid.Validate(value) == nil
	case "sla_breached":
		ix.Breached = value == "true"
		ok = ix.Breached
	}
	if !ok {
		return TicketIndex{}, ErrInvalidFilter
	}
	return ix, nil
}
