package rpc_test

import (
	"fmt"
	"testing"
)

func TestBatchGetTickets(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "support.read", "support.write")
	_, stranger := sys.NewKey(t, "", "support.read", "support.write")
	var tickets []string
	for i := range 3 {
		tickets = append(tickets, sys.createTicket(t, key, fmt.Sprintf(`{"customerId":%q,"subject":"Batch %d"}`, supportCustomer, i))["id"].(string))
	}
	sys.CheckBatchGet(t, "tickets", key, stranger, tickets)
}
