package rpc_test

import (
	"fmt"
	"testing"
)

func TestBatchGetTickets(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "support.read", "support.write", "marketing.read")
	_, stranger := sys.NewKey(t, "", "support.read", "support.write", "marketing.read")
	var tickets []string
	for i := range 3 {
		tickets = append(tickets, sys.createTicket(t, key, fmt.Sprintf(`{"customerId":%q,"subject":"Batch %d"}`, supportCustomer, i))["id"].(string))
	}
	sys.CheckBatchGet(t, "tickets", key, stranger, tickets)
}

func TestExportTickets(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "support.read", "support.write", "support.export", "marketing.read")
	_, reader := sys.NewKey(t, tenant, "support.read")
	_, stranger := sys.NewKey(t, "", "support.export")
	var tickets []string
	for i := range 3 {
		tickets = append(tickets, sys.createTicket(t, key, fmt.Sprintf(`{"customerId":%q,"subject":"Export %d"}`, supportCustomer, i))["id"].(string))
	}
	sys.CheckExport(t, "tickets", "", key, stranger, reader, tickets)
	sys.CheckExport(t, "tickets", "status = TICKET_STATUS_NEW", key, stranger, reader, tickets)
}
