package support_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/page"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

const breachEvent = "support.ticket.sla_breached"

func (f fixture) reply(t *testing.T, id, body string) {
	t.Helper()
	if _, err := f.tickets.AddComment(context.Background(), f.tenant, id, &support.Comment{Body: body}, "agent-1"); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) expectSweep(t *testing.T, at time.Time, breaches, closed int) {
	t.Helper()
	f.clock.Set(at)
	if r := f.sweepNow(t); r.Breaches != breaches || r.Closed != closed {
		t.Fatalf("sweep at t0+%v: %+v, want %d breaches and %d closed", at.Sub(t0), r, breaches, closed)
	}
}

// TestSlaClocksPauseAndBreachOnce follows an URGENT ticket (first response 1 h, resolution 4 h)
// through pauses under a controlled clock: the due times move by the time paused, the remaining
// time freezes while paused, each clock breaches exactly at its due time, once, with one event.
func TestSlaClocksPauseAndBreachOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_URGENT)
	if got := tk.GetFirstResponse().GetDueTime().AsTime(); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("first response due %v, want t0+1h", got)
	}
	f.clock.Set(t0.Add(10 * time.Minute))
	f.move(t, tk.GetId(), support.MoveOpen)
	f.clock.Set(t0.Add(30 * time.Minute))
	f.move(t, tk.GetId(), support.MovePend)

	// Paused for 2h30m: nothing breaches, the remaining time stays at 30 minutes.
	f.expectSweep(t, t0.Add(3*time.Hour), 0, 0)
	if got := f.get(t, tk.GetId()).GetFirstResponse().GetRemaining().AsDuration(); got != 30*time.Minute {
		t.Fatalf("remaining while paused = %v, want 30m", got)
	}
	tk = f.move(t, tk.GetId(), support.MoveOpen)
	if fr, res := tk.GetFirstResponse().GetDueTime().AsTime(), tk.GetResolution().GetDueTime().AsTime(); !fr.Equal(t0.Add(210*time.Minute)) || !res.Equal(t0.Add(390*time.Minute)) {
		t.Fatalf("after the pause: due %v and %v, want t0+3h30m and t0+6h30m", fr.Sub(t0), res.Sub(t0))
	}

	// The first-response clock runs out exactly at its due time.
	f.expectSweep(t, t0.Add(210*time.Minute-time.Millisecond), 0, 0)
	f.expectSweep(t, t0.Add(210*time.Minute), 1, 0)
	f.expectSweep(t, t0.Add(211*time.Minute), 0, 0)
	breaches := f.events(t, breachEvent)
	if len(breaches) != 1 {
		t.Fatalf("%d breach events, want 1", len(breaches))
	}
	payload := &supportv1.TicketSlaBreached{}
	if err := breaches[0].GetPayload().UnmarshalTo(payload); err != nil {
		t.Fatal(err)
	}
	if payload.GetTarget() != supportv1.SlaTarget_SLA_TARGET_FIRST_RESPONSE || payload.GetTicket().GetPriority() != supportv1.TicketPriority_TICKET_PRIORITY_URGENT ||
		payload.GetTicket().GetCustomerId() != customer || !payload.GetDueTime().AsTime().Equal(t0.Add(210*time.Minute)) ||
		breaches[0].GetCustomerId() != customer {
		t.Fatalf("breach event = %v", payload)
	}
	breached, err := f.tickets.List(ctx, f.tenant, support.TicketIndex{Breached: true}, page.Request{Limit: 10})
	if err != nil || len(breached.Items) != 1 || breached.Items[0].GetId() != tk.GetId() {
		t.Fatalf("breached list = %v, %v; want the ticket", breached.Items, err)
	}

	// A late reply stops the clock but the breach stays.
	f.reply(t, tk.GetId(), "Sorry for the wait")
	if fr := f.get(t, tk.GetId()).GetFirstResponse(); fr.GetMetTime() == nil || !fr.GetBreached() || fr.GetRemaining() != nil {
		t.Fatalf("first response after a late reply = %v", fr)
	}

	// On hold for an hour: the resolution clock moves to t0+7h30m; a solve at that moment is late,
	// and the solve itself records the breach (no sweep ran), once.
	f.clock.Set(t0.Add(4 * time.Hour))
	f.move(t, tk.GetId(), support.MoveHold)
	f.clock.Set(t0.Add(5 * time.Hour))
	f.move(t, tk.GetId(), support.MoveOpen)
	f.clock.Set(t0.Add(450 * time.Minute))
	tk = f.move(t, tk.GetId(), support.MoveSolve)
	if r := tk.GetResolution(); !r.GetBreached() || r.GetMetTime() != nil || !r.GetDueTime().AsTime().Equal(t0.Add(450*time.Minute)) {
		t.Fatalf("resolution after a late solve = %v", r)
	}
	f.expectSweep(t, t0.Add(10*time.Hour), 0, 0)
	if n := len(f.events(t, breachEvent)); n != 2 {
		t.Fatalf("%d breach events, want 2 (one per clock)", n)
	}
	st, err := f.stats.Get(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetFirstResponse().GetBreached() != 1 || st.GetFirstResponse().GetMet() != 0 ||
		st.GetResolution().GetBreached() != 1 || st.GetResolution().GetMet() != 0 {
		t.Fatalf("attainment = %v / %v, want one breach each", st.GetFirstResponse(), st.GetResolution())
	}
}

// TestSlaMetAndReopen: a timely reply and solve meet both targets; a reopen takes the solve back
// and the clock runs on from where it stopped (the time solved counts as paused).
func TestSlaMetAndReopen(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_HIGH) // 4 h / 24 h
	f.move(t, tk.GetId(), support.MoveOpen)
	f.clock.Set(t0.Add(4*time.Hour - time.Second))
	f.reply(t, tk.GetId(), "On it")
	f.clock.Set(t0.Add(24*time.Hour - time.Second))
	tk = f.move(t, tk.GetId(), support.MoveSolve)
	if tk.GetFirstResponse().GetBreached() || tk.GetResolution().GetBreached() || tk.GetResolution().GetMetTime() == nil {
		t.Fatalf("timely ticket = %v / %v", tk.GetFirstResponse(), tk.GetResolution())
	}
	f.expectSweep(t, t0.Add(100*time.Hour), 0, 0)

	f.clock.Set(t0.Add(25*time.Hour - time.Second))
	tk = f.move(t, tk.GetId(), support.MoveReopen)
	if due := tk.GetResolution().GetDueTime().AsTime(); !due.Equal(t0.Add(25*time.Hour)) || tk.GetResolution().GetRemaining().AsDuration() != time.Second {
		t.Fatalf("reopened: due t0+%v, remaining %v; want t0+25h and 1s", due.Sub(t0), tk.GetResolution().GetRemaining().AsDuration())
	}
	st, _ := f.stats.Get(ctx, f.tenant)
	if st.GetResolution().GetMet() != 0 || st.GetFirstResponse().GetMet() != 1 || st.GetBacklogTotal() != 1 {
		t.Fatalf("stats after reopen = %v", st)
	}
	f.expectSweep(t, t0.Add(25*time.Hour), 1, 0)
	if n := len(f.events(t, breachEvent)); n != 1 {
		t.Fatalf("%d breach events, want 1", n)
	}
}

// TestPriorityChangeRetargets: raising the priority moves the running clocks to the new policy,
// and a clock that thereby ran out breaches with the update.
func TestPriorityChangeRetargets(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_NORMAL) // 8 h / 72 h
	f.clock.Set(t0.Add(2 * time.Hour))
	up, err := f.tickets.Update(ctx, f.tenant, &support.Ticket{Id: tk.GetId(), Priority: supportv1.TicketPriority_TICKET_PRIORITY_URGENT},
		&fieldmaskpb.FieldMask{Paths: []string{"priority"}})
	if err != nil {
		t.Fatal(err)
	}
	if !up.GetFirstResponse().GetBreached() || !up.GetResolution().GetDueTime().AsTime().Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("urgent now: %v / %v; want first response breached (due t0+1h), resolution due t0+4h", up.GetFirstResponse(), up.GetResolution())
	}
	if n := len(f.events(t, breachEvent)); n != 1 {
		t.Fatalf("%d breach events, want 1", n)
	}
}

// TestAutoClose: a solved ticket closes by itself exactly after the tenant's auto-close days.
func TestAutoClose(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.config.UpdateSettings(ctx, f.tenant, &support.SupportSettings{AutoCloseDays: 2, Etag: "0"}, nil); err != nil {
		t.Fatal(err)
	}
	tk := f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_LOW)
	f.move(t, tk.GetId(), support.MoveOpen, support.MoveSolve)
	f.expectSweep(t, t0.Add(48*time.Hour-time.Millisecond), 0, 0)
	f.expectSweep(t, t0.Add(48*time.Hour), 0, 1)
	if got := f.get(t, tk.GetId()); got.GetStatus() != supportv1.TicketStatus_TICKET_STATUS_CLOSED || !got.GetCloseTime().AsTime().Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("after the auto-close time: %v", got)
	}
	if n := len(f.events(t, "support.ticket.closed")); n != 1 {
		t.Fatalf("%d closed events, want 1", n)
	}
	f.expectSweep(t, t0.Add(96*time.Hour), 0, 0)
}

// TestConcurrentSweepsBreachOnce: several sweepers (the tenant's :sweep and the background
// partition sweep, as two processes would run them) racing over the same run-out clocks mark each
// breach once, with one event.
func TestConcurrentSweepsBreachOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// Before every other test's t0, so the partition holds no other due tickets at this clock.
	start := t0.Add(-1000 * time.Hour)
	f.clock.Set(start)
	const tickets = 30
	for range tickets {
		f.create(t, supportv1.TicketPriority_TICKET_PRIORITY_URGENT)
	}
	f.clock.Set(start.Add(time.Hour))
	partition := f.keys.Partition(f.tenant)
	results := make(chan support.SweepResult, 6)
	errs := make(chan error, 6)
	for i := range 6 {
		go func() {
			var r support.SweepResult
			var err error
			if i%2 == 0 {
				r, err = f.sweep.Tenant(ctx, f.tenant)
			} else {
				r, err = f.sweep.Partition(ctx, partition)
			}
			results <- r
			errs <- err
		}()
	}
	total := 0
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		total += (<-results).Breaches
	}
	if total != tickets {
		t.Fatalf("sweepers report %d breaches, want %d", total, tickets)
	}
	if n := len(f.events(t, breachEvent)); n != tickets {
		t.Fatalf("%d breach events, want %d", n, tickets)
	}
}
