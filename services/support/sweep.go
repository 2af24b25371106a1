package support

import (
	"context"
	"errors"
	"time"
)

// sweepBatch is how many due tickets a sweep reads at a time.
const sweepBatch = 100

// SweepResult counts what a sweep did.
type SweepResult struct {
	Breaches, Closed int
}

// Sweep marks SLA breaches and auto-closes solved tickets whose time has come. It reads only the
// due-time schedules (sorted sets), never the tickets that are not due.
type Sweep struct {
	tickets *Tickets
}

// NewSweep returns the sweeps over the ticket use cases.
func NewSweep(tickets *Tickets) *Sweep { return &Sweep{tickets: tickets} }

// Tenant sweeps one tenant's due tickets.
func (s *Sweep) Tenant(ctx context.Context, tenant string) (SweepResult, error) {
	var total SweepResult
	for _, schedule := range []Schedule{SlaSchedule, AutoCloseSchedule} {
		for {
			ids, err := s.tickets.store.DueTickets(ctx, tenant, schedule, s.tickets.now().UTC(), sweepBatch)
			if err != nil {
				return total, err
			}
			due := make([]Due, len(ids))
			for i, id := range ids {
				due[i] = Due{Tenant: tenant, TicketID: id}
			}
			done, err := s.work(ctx, due, &total)
			if err != nil {
				return total, err
			}
			if done < sweepBatch {
				break
			}
		}
	}
	return total, nil
}

// Partition sweeps the due tickets of every tenant of one key-space partition.
func (s *Sweep) Partition(ctx context.Context, partition int) (SweepResult, error) {
	var total SweepResult
	for _, schedule := range []Schedule{SlaSchedule, AutoCloseSchedule} {
		for {
			due, err := s.tickets.store.DueInPartition(ctx, partition, schedule, s.tickets.now().UTC(), sweepBatch)
			if err != nil {
				return total, err
			}
			done, err := s.work(ctx, due, &total)
			if err != nil {
				return total, err
			}
			if done < sweepBatch {
				break
			}
		}
	}
	return total, nil
}

// work settles each due ticket and returns how many it settled; one that changed nothing (another
// sweeper got there first) does not count, so a batch that makes no progress ends the sweep.
func (s *Sweep) work(ctx context.Context, due []Due, total *SweepResult) (int, error) {
	settled := 0
	for _, d := range due {
		r, err := s.settle(ctx, d)
		if errors.Is(err, ErrTicketNotFound) {
			continue
		}
		if err != nil {
			return settled, err
		}
		if r.Breaches+r.Closed > 0 {
			settled++
		}
		total.Breaches += r.Breaches
		total.Closed += r.Closed
	}
	return settled, nil
}

// settle marks a ticket's run-out clocks and closes it if it is solved past its auto-close time.
func (s *Sweep) settle(ctx context.Context, d Due) (SweepResult, error) {
	var r SweepResult
	_, _, err := s.tickets.change(ctx, d.Tenant, d.TicketID, "", func(t *Ticket, now time.Time, c *changes) error {
		r = SweepResult{Breaches: len(c.breaches)}
		if at, ok := AutoCloseDue(t); ok && !now.Before(at) {
			r.Closed = 1
			return moveTicket(t, MoveClose, now, 0, c)
		}
		return nil
	})
	return r, err
}
