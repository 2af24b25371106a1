package support_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// roundTrips counts the calls a Redis client makes: a pipeline is one round trip.
type roundTrips struct {
	mu     sync.Mutex
	trips  int
	writes int
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.count(cmd)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.mu.Lock()
		r.trips++
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (r *roundTrips) count(cmd redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trips++
	if name := strings.ToLower(cmd.Name()); name == "evalsha" || name == "eval" {
		r.writes++
	}
}

func (r *roundTrips) take() (trips, writes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	trips, writes = r.trips, r.writes
	r.trips, r.writes = 0, 0
	return trips, writes
}

// TestOneRoundTripPerWrite: every ticket write is one atomic script call, after at most two reads
// (the ticket, and the policies or settings it needs).
func TestOneRoundTripPerWrite(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_NORMAL) // loads the script once
	counter := &roundTrips{}
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
		{"assign", func() error { _, err := f.tickets.Assign(ctx, f.tenant, id, "a"); return err }},
		{"comment", func() error {
			_, err := f.tickets.AddComment(ctx, f.tenant, id, &support.Comment{Body: "b"}, "a")
			return err
		}},
		{"solve", func() error { _, err := f.tickets.Move(ctx, f.tenant, id, support.MoveSolve); return err }},
		{"rate", func() error { _, err := f.tickets.Rate(ctx, f.tenant, id, 5, ""); return err }},
		{"nps", func() error {
			_, err := f.nps.Record(ctx, f.tenant, &support.NpsResponse{CustomerId: customer, Score: 9})
			return err
		}},
	} {
		counter.take()
		f.clock.Advance(time.Minute)
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		trips, writes := counter.take()
		t.Logf("%s: %d round trips, %d script calls", w.name, trips, writes)
		if writes != 1 || trips > 3 {
			t.Errorf("%s: %d round trips with %d script calls, want one script call and at most two reads", w.name, trips, writes)
		}
	}
}
