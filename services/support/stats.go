package support

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Tally are counter deltas (or, read back, the counters) of a tenant's statistics, by field.
type Tally map[string]int64

// Counter fields. Backlog cells are "backlog:<status>:<priority>".
const (
	countCreated          = "created"
	countFirstMet         = "first_response_met"
	countFirstBreached    = "first_response_breached"
	countFirstTimeMs      = "first_response_ms"
	countFirstResponded   = "first_responses"
	countResolveMet       = "resolution_met"
	countResolveBreached  = "resolution_breached"
	countResolveTimeMs    = "resolution_ms"
	countResolved         = "resolved"
	countCsatSum          = "csat_sum"
	countCsatCount        = "csat_count"
	countPromoters        = "nps_promoters"
	countPassives         = "nps_passives"
	countDetractors       = "nps_detractors"
	backlogPrefix         = "backlog:"
	backlogFieldSeparator = ":"
)

// contribution is what one ticket, as it stands, adds to the counters. The statistics are the sum
// of it over all tickets; a write adds the difference between the ticket after and before, so the
// counters stay that sum without ever reading the tickets back.
func contribution(t *Ticket) Tally {
	c := Tally{countCreated: 1, backlogPrefix + t.GetStatus().String() + backlogFieldSeparator + t.GetPriority().String(): 1}
	created := t.GetCreateTime().AsTime()
	if fr := t.GetFirstResponse(); fr.GetMetTime() != nil {
		c[countFirstResponded] = 1
		c[countFirstTimeMs] = fr.GetMetTime().AsTime().Sub(created).Milliseconds()
		if !fr.GetBreached() {
			c[countFirstMet] = 1
		}
	}
	if t.GetFirstResponse().GetBreached() {
		c[countFirstBreached] = 1
	}
	if res := t.GetResolution(); res.GetMetTime() != nil && !res.GetBreached() {
		c[countResolveMet] = 1
	}
	if t.GetResolution().GetBreached() {
		c[countResolveBreached] = 1
	}
	if done(t.GetStatus()) && t.GetSolveTime() != nil {
		c[countResolved] = 1
		c[countResolveTimeMs] = t.GetSolveTime().AsTime().Sub(created).Milliseconds()
	}
	if r := t.GetCsat(); r != nil {
		c[countCsatSum] = int64(r.GetScore())
		c[countCsatCount] = 1
	}
	return c
}

// tallyChange is the counter deltas of a ticket going from prev (nil: new) to next.
func tallyChange(prev, next *Ticket) Tally {
	d := contribution(next)
	if prev != nil {
		for k, v := range contribution(prev) {
			d[k] -= v
		}
	}
	for k, v := range d {
		if v == 0 {
			delete(d, k)
		}
	}
	return d
}

func done(s supportv1.TicketStatus) bool {
	return s == supportv1.TicketStatus_TICKET_STATUS_SOLVED || s == supportv1.TicketStatus_TICKET_STATUS_CLOSED
}

// Stats are the statistics use case.
type Stats struct {
	store Store
}

// NewStats returns the use case over store.
func NewStats(store Store) *Stats { return &Stats{store: store} }

// Get computes a tenant's statistics from its counters: one read, whatever the number of tickets.
func (s *Stats) Get(ctx context.Context, tenant string) (*supportv1.SupportStats, error) {
	n, err := s.store.Tally(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return statsFrom(n), nil
}

func statsFrom(n Tally) *supportv1.SupportStats {
	st := &supportv1.SupportStats{
		TicketsCreated: n[countCreated],
		FirstResponse:  attainment(n[countFirstMet], n[countFirstBreached]),
		Resolution:     attainment(n[countResolveMet], n[countResolveBreached]),
		CsatCount:      n[countCsatCount],
		NpsPromoters:   n[countPromoters], NpsPassives: n[countPassives], NpsDetractors: n[countDetractors],
	}
	st.AverageFirstResponseTime = average(n[countFirstTimeMs], n[countFirstResponded])
	st.AverageResolutionTime = average(n[countResolveTimeMs], n[countResolved])
	if st.CsatCount > 0 {
		st.CsatAverage = float64(n[countCsatSum]) / float64(st.CsatCount)
	}
	if answers := st.NpsPromoters + st.NpsPassives + st.NpsDetractors; answers > 0 {
		st.Nps = float64(st.NpsPromoters-st.NpsDetractors) * 100 / float64(answers)
	}
	for field, count := range n {
		cell, ok := strings.CutPrefix(field, backlogPrefix)
		if !ok || count == 0 {
			continue
		}
		status, priority, _ := strings.Cut(cell, backlogFieldSeparator)
		s := supportv1.TicketStatus(supportv1.TicketStatus_value[status])
		if s == supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			continue
		}
		st.Backlog = append(st.Backlog, &supportv1.BacklogCell{Status: s,
			Priority: supportv1.TicketPriority(supportv1.TicketPriority_value[priority]), Count: count})
		if !done(s) {
			st.BacklogTotal += count
		}
	}
	slices.SortFunc(st.Backlog, func(a, b *supportv1.BacklogCell) int {
		if a.GetStatus() != b.GetStatus() {
			return int(a.GetStatus() - b.GetStatus())
		}
		return int(a.GetPriority() - b.GetPriority())
	})
	return st
}

func attainment(met, breached int64) *supportv1.SlaAttainment {
	a := &supportv1.SlaAttainment{Met: met, Breached: breached, Ratio: 1}
	if met+breached > 0 {
		a.Ratio = float64(met) / float64(met+breached)
	}
	return a
}

func average(totalMs, count int64) *durationpb.Duration {
	if count == 0 {
		return durationpb.New(0)
	}
	return durationpb.New(time.Duration(totalMs/count) * time.Millisecond)
}
