package support_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/page"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// TestStatsMatchIndependentComputation generates a random workload (tickets of every priority
// opened, worked, paused, solved, rated, reopened, closed, re-prioritized, swept, NPS answers)
// under a moving clock, then recomputes every statistic from the stored tickets and the answers
// given, and compares with what the counters kept at write time say.
func TestStatsMatchIndependentComputation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var ids []string
	var npsScores []int32
	priority := func() supportv1.TicketPriority { return supportv1.TicketPriority(1 + rng.IntN(4)) }
	for range 1500 {
		f.clock.Advance(time.Duration(rng.IntN(12)) * time.Minute)
		var err error
		switch n := rng.IntN(100); {
		case n < 15 || len(ids) == 0:
			var tk *support.Ticket
			tk, err = f.tickets.Create(ctx, f.tenant, &support.Ticket{CustomerId: customer, Subject: "s", Priority: priority()})
			if err == nil {
				ids = append(ids, tk.GetId())
			}
		case n < 20:
			score := int32(rng.IntN(11))
			if _, err = f.nps.Record(ctx, f.tenant, &support.NpsResponse{CustomerId: customer, Score: score}); err == nil {
				npsScores = append(npsScores, score)
			}
		case n < 25:
			_, err = f.sweep.Tenant(ctx, f.tenant)
		default:
			// Mostly the recent tickets, so tickets get worked before their clocks run out.
			id := ids[max(0, len(ids)-1-rng.IntN(15))]
			switch rng.IntN(6) {
			case 0:
				_, err = f.tickets.AddComment(ctx, f.tenant, id, &support.Comment{Body: "b", Internal: rng.IntN(4) == 0}, "agent")
			case 1:
				_, err = f.tickets.Rate(ctx, f.tenant, id, int32(1+rng.IntN(5)), "", "")
			case 2:
				_, err = f.tickets.Update(ctx, f.tenant, &support.Ticket{Id: id, Priority: priority()}, &fieldmaskpb.FieldMask{Paths: []string{"priority"}})
			default:
				moves := []support.Move{support.MoveOpen, support.MovePend, support.MoveHold, support.MoveSolve, support.MoveReopen, support.MoveClose}
				m := moves[rng.IntN(len(moves))]
				_, err = f.tickets.Move(ctx, f.tenant, id, m, "")
				if err == nil && m == support.MoveSolve && rng.IntN(2) == 0 {
					_, err = f.tickets.Rate(ctx, f.tenant, id, int32(1+rng.IntN(5)), "", "")
				}
			}
		}
		if err != nil && !errors.Is(err, support.ErrTicketStatus) && !errors.Is(err, support.ErrAlreadyRated) {
			t.Fatal(err)
		}
	}

	var tickets []*support.Ticket
	req := page.Request{Limit: 1000}
	for {
		batch, err := f.store.ListTickets(ctx, f.tenant, support.TicketIndex{}, req)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, batch.Items...)
		if batch.Next == "" {
			break
		}
		req.After = batch.Next
	}
	if len(tickets) != len(ids) {
		t.Fatalf("listed %d tickets, created %d", len(tickets), len(ids))
	}

	want := &supportv1.SupportStats{TicketsCreated: int64(len(tickets)), FirstResponse: &supportv1.SlaAttainment{}, Resolution: &supportv1.SlaAttainment{}}
	type cell struct {
		s supportv1.TicketStatus
		p supportv1.TicketPriority
	}
	backlog := map[cell]int64{}
	var firstTotal, resolveTotal time.Duration
	var firstCount, resolveCount, csatSum int64
	for _, tk := range tickets {
		if tk.GetStatus() != supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			backlog[cell{tk.GetStatus(), tk.GetPriority()}]++
		}
		if tk.GetStatus() < supportv1.TicketStatus_TICKET_STATUS_SOLVED {
			want.BacklogTotal++
		}
		fr, res := tk.GetFirstResponse(), tk.GetResolution()
		switch {
		case fr.GetBreached():
			want.FirstResponse.Breached++
		case fr.GetMetTime() != nil:
			want.FirstResponse.Met++
		}
		if fr.GetMetTime() != nil {
			firstTotal += fr.GetMetTime().AsTime().Sub(tk.GetCreateTime().AsTime()).Truncate(time.Millisecond)
			firstCount++
		}
		switch {
		case res.GetBreached():
			want.Resolution.Breached++
		case res.GetMetTime() != nil:
			want.Resolution.Met++
		}
		if s := tk.GetStatus(); s == supportv1.TicketStatus_TICKET_STATUS_SOLVED || s == supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			resolveTotal += tk.GetSolveTime().AsTime().Sub(tk.GetCreateTime().AsTime()).Truncate(time.Millisecond)
			resolveCount++
		}
		if tk.GetCsat() != nil {
			want.CsatCount++
			csatSum += int64(tk.GetCsat().GetScore())
		}
	}
	for _, s := range npsScores {
		switch {
		case s >= 9:
			want.NpsPromoters++
		case s >= 7:
			want.NpsPassives++
		default:
			want.NpsDetractors++
		}
	}

	got, err := f.stats.Get(ctx, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetTicketsCreated() != want.TicketsCreated || got.GetBacklogTotal() != want.BacklogTotal ||
		got.GetFirstResponse().GetMet() != want.FirstResponse.Met || got.GetFirstResponse().GetBreached() != want.FirstResponse.Breached ||
		got.GetResolution().GetMet() != want.Resolution.Met || got.GetResolution().GetBreached() != want.Resolution.Breached ||
		got.GetCsatCount() != want.CsatCount || got.GetNpsPromoters() != want.NpsPromoters ||
		got.GetNpsPassives() != want.NpsPassives || got.GetNpsDetractors() != want.NpsDetractors {
		t.Fatalf("stats from counters:\n%v\nrecomputed:\n%v", got, want)
	}
	if want.FirstResponse.Breached == 0 || want.Resolution.Met == 0 || want.CsatCount == 0 {
		t.Fatalf("the workload exercised too little: %v", want)
	}
	if firstCount > 0 && got.GetAverageFirstResponseTime().AsDuration() != (firstTotal/time.Duration(firstCount)).Truncate(time.Millisecond) {
		t.Errorf("average first response %v, recomputed %v", got.GetAverageFirstResponseTime().AsDuration(), firstTotal/time.Duration(firstCount))
	}
	if resolveCount > 0 && got.GetAverageResolutionTime().AsDuration() != (resolveTotal/time.Duration(resolveCount)).Truncate(time.Millisecond) {
		t.Errorf("average resolution %v, recomputed %v", got.GetAverageResolutionTime().AsDuration(), resolveTotal/time.Duration(resolveCount))
	}
	if want := float64(csatSum) / float64(want.CsatCount); got.GetCsatAverage() != want {
		t.Errorf("CSAT average %v, recomputed %v", got.GetCsatAverage(), want)
	}
	if answers := want.NpsPromoters + want.NpsPassives + want.NpsDetractors; answers > 0 &&
		got.GetNps() != float64(want.NpsPromoters-want.NpsDetractors)*100/float64(answers) {
		t.Errorf("NPS %v, recomputed from %d answers", got.GetNps(), answers)
	}
	gotCells := map[cell]int64{}
	for _, c := range got.GetBacklog() {
		gotCells[cell{c.GetStatus(), c.GetPriority()}] = c.GetCount()
	}
	for c, n := range backlog {
		if gotCells[c] != n {
			t.Errorf("backlog %v/%v = %d, recomputed %d", c.s, c.p, gotCells[c], n)
		}
	}
	if len(gotCells) != len(backlog) {
		t.Errorf("backlog has %d cells, recomputed %d", len(gotCells), len(backlog))
	}
}
