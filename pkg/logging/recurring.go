package logging

import (
	"context"
	"log/slog"
	"time"
)

// RecurringEvery is how often a Recurring logs an error that keeps recurring.
const RecurringEvery = time.Minute

// Recurring keeps a background loop's failures from flooding the log while what it needs is away
// (Redis down fails every attempt of every partition): the first failure is logged, then at most
// one every RecurringEvery, with how many were left out meanwhile ("suppressed"). One per loop: it
// is not safe for concurrent use. The zero value is ready.
type Recurring struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	logged     time.Time
	suppressed int
}

// Warn logs msg and args at WARN, unless a failure was logged less than RecurringEvery ago, in
// which case it only counts it.
func (r *Recurring) Warn(ctx context.Context, logger *slog.Logger, msg string, args ...any) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	t := now()
	if !r.logged.IsZero() && t.Sub(r.logged) < RecurringEvery {
		r.suppressed++
		return
	}
	if r.suppressed > 0 {
		args = append(args, "suppressed", r.suppressed)
	}
	logger.WarnContext(ctx, msg, args...)
	r.logged, r.suppressed = t, 0
}

// Reset forgets the failures: the loop succeeded, so its next failure is news and is logged at once.
func (r *Recurring) Reset() { r.logged, r.suppressed = time.Time{}, 0 }
