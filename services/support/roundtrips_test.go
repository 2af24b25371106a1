package support_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/redistest"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// TestOneRoundTripPerWrite: every ticket write is one atomic script call, after at most two reads
// (the ticket, and the policies or settings it needs).
func TestOneRoundTripPerWrite(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_NORMAL) // loads the script once
	counter := &redistest.Commands{}
	f.rdb.AddHook(counter)
	id := tk.GetId()
	for _, w := range []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			_, err := f.tickets.Create(ctx, f.tenant, &support.Ticket{CustomerId: customer, Subject: "x"})
			return err
		}},
		{"update", func() error {
			_, err := f.tickets.Update(ctx, f.tenant, &support.Ticket{Id: id, Subject: "y"}, &fieldmaskpb.FieldMask{Paths: []string{"subject"}})
			return err
		}},
		{"assign", func() error { _, err := f.tickets.Assign(ctx, f.tenant, id, "a", ""); return err }},
		{"comment", func() error {
			_, err := f.tickets.AddComment(ctx, f.tenant, id, &support.Comment{Body: "b"}, "a")
			return err
		}},
		{"solve", func() error { _, err := f.tickets.Move(ctx, f.tenant, id, support.MoveSolve, ""); return err }},
		{"rate", func() error { _, err := f.tickets.Rate(ctx, f.tenant, id, 5, "", ""); return err }},
		{"nps", func() error {
			_, err := f.nps.Record(ctx, f.tenant, &support.NpsResponse{CustomerId: customer, Score: 9})
			return err
		}},
	} {
		counter.Take()
		f.clock.Advance(time.Minute)
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		trips, writes := counter.Trips(), counter.Scripts()
		t.Logf("%s: %d round trips, %d script calls", w.name, trips, writes)
		if writes != 1 || trips > 3 {
			t.Errorf("%s: %d round trips with %d script calls, want one script call and at most two reads", w.name, trips, writes)
		}
	}
}
