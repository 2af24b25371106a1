package support

import (
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

var errTimeZone = apierr.Invalid("settings.business_hours.time_zone", "must be an IANA time zone such as Europe/Berlin")

// calendar is the time SLA clocks count: around the clock (nil), or a working week's hours.
type calendar struct {
	loc        *time.Location
	start, end int // hours of the working day
	days       [8]bool
}

// calendarOf is the calendar of a working week; nil (around the clock) for none.
func calendarOf(h *supportv1.BusinessHours) (*calendar, error) {
	if h == nil {
		return nil, nil
	}
	loc, err := time.LoadLocation(h.GetTimeZone())
	if err != nil {
		return nil, errTimeZone
	}
	c := &calendar{loc: loc, start: int(h.GetStartHour()), end: int(h.GetEndHour())}
	for _, d := range h.GetDays() {
		c.days[d] = true
	}
	return c, nil
}

// ticketCalendar is the calendar a ticket's clocks count in (validated when the tenant set it).
func ticketCalendar(t *Ticket) *calendar {
	c, err := calendarOf(t.GetBusinessHours())
	if err != nil {
		return nil
	}
	return c
}

// window is the working hours of the day of t, in the calendar's zone; ok false on a day off.
func (c *calendar) window(t time.Time) (open, close time.Time, ok bool) {
	t = t.In(c.loc)
	day := int(t.Weekday())
	if day == 0 {
		day = 7
	}
	y, m, d := t.Date()
	open = time.Date(y, m, d, c.start, 0, 0, 0, c.loc)
	close = time.Date(y, m, d, c.end, 0, 0, 0, c.loc)
	return open, close, c.days[day]
}

// nextDay is midnight after t's day, in the calendar's zone.
func (c *calendar) nextDay(t time.Time) time.Time {
	y, m, d := t.In(c.loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, c.loc)
}

// add is the time d of counted time after t. Negative d (an overdue clock moved to a shorter
// target) counts back around the clock: the clock has run out either way.
func (c *calendar) add(t time.Time, d time.Duration) time.Time {
	if c == nil || d < 0 {
		return t.Add(d)
	}
	for {
		open, close, ok := c.window(t)
		if ok && t.Before(close) {
			if t.Before(open) {
				t = open
			}
			left := close.Sub(t)
			if d <= left {
				return t.Add(d)
			}
			d -= left
		}
		t = c.nextDay(t)
	}
}

// between is the counted time from a to b (negative when b is before a).
func (c *calendar) between(a, b time.Time) time.Duration {
	if c == nil {
		return b.Sub(a)
	}
	if b.Before(a) {
		return -c.between(b, a)
	}
	var total time.Duration
	for t := a; t.Before(b); t = c.nextDay(t) {
		open, close, ok := c.window(t)
		if !ok {
			continue
		}
		from, to := maxTime(open, t), minTime(close, b)
		if to.After(from) {
			total += to.Sub(from)
		}
	}
	return total
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
