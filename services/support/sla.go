package support

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// defaultTargets are the SLA targets of a priority a tenant has not changed: first response, then
// resolution.
var defaultTargets = map[supportv1.TicketPriority][2]time.Duration{
	supportv1.TicketPriority_TICKET_PRIORITY_URGENT: {time.Hour, 4 * time.Hour},
	supportv1.TicketPriority_TICKET_PRIORITY_HIGH:   {4 * time.Hour, 24 * time.Hour},
	supportv1.TicketPriority_TICKET_PRIORITY_NORMAL: {8 * time.Hour, 72 * time.Hour},
	supportv1.TicketPriority_TICKET_PRIORITY_LOW:    {24 * time.Hour, 168 * time.Hour},
}

// priorities are the ticket priorities, lowest first.
var priorities = []supportv1.TicketPriority{
	supportv1.TicketPriority_TICKET_PRIORITY_LOW,
	supportv1.TicketPriority_TICKET_PRIORITY_NORMAL,
	supportv1.TicketPriority_TICKET_PRIORITY_HIGH,
	supportv1.TicketPriority_TICKET_PRIORITY_URGENT,
}

// defaultEtag is the etag of a policy or settings a tenant has not changed.
const defaultEtag = "0"

func defaultPolicy(p supportv1.TicketPriority) *SlaPolicy {
	t := defaultTargets[p]
	return &SlaPolicy{Priority: p, FirstResponseTarget: durationpb.New(t[0]),
		ResolutionTarget: durationpb.New(t[1]), Etag: defaultEtag}
}

// policyFor is the tenant's policy of a priority: the stored one, or the default.
func policyFor(stored map[supportv1.TicketPriority]*SlaPolicy, p supportv1.TicketPriority) *SlaPolicy {
	if s, ok := stored[p]; ok {
		return s
	}
	return defaultPolicy(p)
}

// pausing reports whether the SLA clocks stand still in a status: waiting on the customer or a
// third party, or done.
func pausing(s supportv1.TicketStatus) bool {
	switch s {
	case supportv1.TicketStatus_TICKET_STATUS_PENDING, supportv1.TicketStatus_TICKET_STATUS_ON_HOLD,
		supportv1.TicketStatus_TICKET_STATUS_SOLVED, supportv1.TicketStatus_TICKET_STATUS_CLOSED:
		return true
	}
	return false
}

// startClocks sets a new ticket's clocks from its priority's policy; a business-hours policy
// makes them count in the tenant's working week (hours), which the ticket keeps.
func startClocks(t *Ticket, p *SlaPolicy, hours *supportv1.BusinessHours, now time.Time) {
	if p.GetBusinessHours() && hours != nil {
		t.BusinessHours = proto.CloneOf(hours)
	}
	cal := ticketCalendar(t)
	t.FirstResponse = newClock(cal, p.GetFirstResponseTarget().AsDuration(), now)
	t.Resolution = newClock(cal, p.GetResolutionTarget().AsDuration(), now)
}

func newClock(cal *calendar, target time.Duration, now time.Time) *supportv1.SlaClock {
	return &supportv1.SlaClock{Target: durationpb.New(target), DueTime: timestamppb.New(cal.add(now, target))}
}

// running reports whether a clock still counts toward its target.
func running(c *supportv1.SlaClock) bool {
	return c != nil && c.GetMetTime() == nil && !c.GetBreached()
}

func clocks(t *Ticket) []*supportv1.SlaClock {
	return []*supportv1.SlaClock{t.GetFirstResponse(), t.GetResolution()}
}

// setStatus moves a ticket to a status, pausing or resuming its clocks: on resume, every running
// clock's due time moves later by the time spent paused (its counted time left is kept).
func setStatus(t *Ticket, to supportv1.TicketStatus, now time.Time) {
	t.Status = to
	switch {
	case pausing(to) && t.GetPauseTime() == nil:
		t.PauseTime = timestamppb.New(now)
	case !pausing(to) && t.GetPauseTime() != nil:
		cal, paused := ticketCalendar(t), t.GetPauseTime().AsTime()
		for _, c := range clocks(t) {
			if running(c) {
				c.DueTime = timestamppb.New(cal.add(now, cal.between(paused, c.GetDueTime().AsTime())))
			}
		}
		t.PauseTime = nil
	}
}

// retarget moves the running clocks of a ticket to another policy's targets at now, keeping the
// time they were paused.
func retarget(t *Ticket, p *SlaPolicy, now time.Time) {
	if pause := t.GetPauseTime(); pause != nil {
		now = pause.AsTime()
	}
	cal := ticketCalendar(t)
	targets := []*durationpb.Duration{p.GetFirstResponseTarget(), p.GetResolutionTarget()}
	for i, c := range clocks(t) {
		if running(c) {
			left := cal.between(now, c.GetDueTime().AsTime()) + targets[i].AsDuration() - c.GetTarget().AsDuration()
			c.DueTime, c.Target = timestamppb.New(cal.add(now, left)), targets[i]
		}
	}
}

// markBreaches marks every running clock whose due time has come (at or before now) as breached
// and returns the targets it marked. Paused clocks never breach. Every write runs it first, so a
// breach is recorded (with its event) by whichever comes first: the sweep or the next change.
func markBreaches(t *Ticket, now time.Time) []supportv1.SlaTarget {
	if t.GetPauseTime() != nil {
		return nil
	}
	var out []supportv1.SlaTarget
	targets := []supportv1.SlaTarget{supportv1.SlaTarget_SLA_TARGET_FIRST_RESPONSE, supportv1.SlaTarget_SLA_TARGET_RESOLUTION}
	for i, c := range clocks(t) {
		if running(c) && !now.Before(c.GetDueTime().AsTime()) {
			c.Breached = true
			out = append(out, targets[i])
		}
	}
	return out
}

// NextSlaDue is when the ticket's next running clock runs out; false when none runs (all met,
// breached or paused).
func NextSlaDue(t *Ticket) (time.Time, bool) {
	if t.GetPauseTime() != nil {
		return time.Time{}, false
	}
	var next time.Time
	for _, c := range clocks(t) {
		if due := c.GetDueTime().AsTime(); running(c) && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next, !next.IsZero()
}

// AutoCloseDue is when a solved ticket closes by itself; false when it is not solved.
func AutoCloseDue(t *Ticket) (time.Time, bool) {
	if t.GetStatus() != supportv1.TicketStatus_TICKET_STATUS_SOLVED || t.GetAutoCloseTime() == nil {
		return time.Time{}, false
	}
	return t.GetAutoCloseTime().AsTime(), true
}

// withRemaining is the ticket as served at now: each clock not met shows the counted time left
// (frozen while paused, negative once overdue).
func withRemaining(t *Ticket, now time.Time) *Ticket {
	if p := t.GetPauseTime(); p != nil {
		now = p.AsTime()
	}
	cal := ticketCalendar(t)
	for _, c := range clocks(t) {
		if c != nil && c.GetMetTime() == nil {
			c.Remaining = durationpb.New(cal.between(now, c.GetDueTime().AsTime()))
		}
	}
	return t
}
