package marketing

import (
	"context"
	"errors"
	"time"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// How the loyalty ladder converges: a customer's stage is a function of the facts marketing has
// recorded about them (StageOf), never of the order events arrived in. Each reaction records its
// fact first (idempotently: an order is a member of a set, a subscription's end is final, flags
// only turn on), then recomputes the stage from all the facts and moves the customer there if it
// differs. The move is committed only if no fact was recorded since the facts were read (the
// facts carry a version the move checks), else it is recomputed; so whichever reaction commits
// last computed from every fact, and the same facts in any order give the same stage; a first
// purchase's move records FIRST_TIME_CUSTOMER on the way (climbTo), so the funnel's path is the
// same too. Time enters
// only through the churn window, which the sweep re-evaluates when it runs out.

// DefaultChurnWindow is how long a customer may go without an order or an active subscription
// before they are CHURNED.
const DefaultChurnWindow = 180 * 24 * time.Hour

// Facts are what the ladder knows about a customer.
type Facts struct {
	// Orders counts distinct orders; LastOrder is the latest one's time.
	Orders    int
	LastOrder time.Time
	// ActiveRecurring counts recurring subscriptions started and not ended; Subscribed says the
	// customer ever had one; LastEnded is when the latest one ended.
	ActiveRecurring int
	Subscribed      bool
	LastEnded       time.Time
	// Promoter: an NPS promoter; Referrer: referred a customer who bought; Engaged: captured or
	// engaged as a lead.
	Promoter, Referrer, Engaged bool
	// Version changes with every fact recorded; a stage move computed from these facts checks it.
	Version string
}

// Fact is one thing learned about a customer; the zero value of a field says nothing.
type Fact struct {
	// Order is an order's id, placed at OrderTime.
	Order     string
	OrderTime time.Time
	// Subscription is a recurring subscription's id: started (Active) or ended at At.
	Subscription string
	Active       bool
	At           time.Time
	Promoter     bool
	Referrer     bool
	Engaged      bool
}

// FactStore keeps the ladder's facts.
type FactStore interface {
	// RecordFact adds a fact (recording it again changes nothing but the version).
	RecordFact(ctx context.Context, tenant, customer string, f Fact) error
	// CustomerFacts reads a customer's facts in one round trip.
	CustomerFacts(ctx context.Context, tenant, customer string) (Facts, error)
}

// IsCustomer says the facts make a customer: an order, or a recurring subscription.
func (f Facts) IsCustomer() bool { return f.Orders > 0 || f.Subscribed }

// LastActive is when the customer last ordered or last had a subscription end (zero while one
// is active): the churn window counts from there.
func (f Facts) LastActive() time.Time {
	if f.LastEnded.After(f.LastOrder) {
		return f.LastEnded
	}
	return f.LastOrder
}

// ChurnDue is when the customer churns if nothing happens: zero when they cannot (not a
// customer, or an active recurring subscription).
func (f Facts) ChurnDue(window time.Duration) time.Time {
	if !f.IsCustomer() || f.ActiveRecurring > 0 {
		return time.Time{}
	}
	return f.LastActive().Add(window)
}

// StageOf is the stage the facts give at now. cur is the current stage, which only decides
// between SUSPECT and PROSPECT for people who are not customers (how they were first seen), and
// keeps a stage someone set by hand on a person the facts do not make a customer.
func StageOf(f Facts, cur Stage, window time.Duration, now time.Time) Stage {
	if !f.IsCustomer() {
		switch cur {
		case marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT:
			if !f.Engaged {
				return cur
			}
			return marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
		case marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED:
			return marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT
		}
		return cur
	}
	switch due := f.ChurnDue(window); {
	case !due.IsZero() && !now.Before(due):
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED
	case f.Promoter || f.Referrer:
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE
	case f.ActiveRecurring > 0:
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	case f.Orders >= 2:
		return marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER
	}
	// One order, or subscriptions whose order marketing has not seen.
	return marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
}

// learn records a fact about a customer and moves them to the stage their facts now give.
func (r *Reactions) learn(ctx context.Context, tenant, customer string, f Fact, cause, eventID string) error {
	customer, err := r.survivorOf(ctx, tenant, customer)
	if err != nil {
		return err
	}
	if err := r.store.RecordFact(ctx, tenant, customer, f); err != nil {
		return err
	}
	return r.restage(ctx, tenant, customer, cause, eventID)
}

// restage moves a customer to the stage their facts give (nothing when they are there), and keeps
// their churn schedule: due when the tenant's churn window runs out, none when they cannot churn
// or did. The stage move and the schedule are both conditional on the lifecycle settings they
// were computed with: when the window changes under them, they are computed again with the new
// one (so a shrunk window churns at the new time, a grown one never churns early).
func (r *Reactions) restage(ctx context.Context, tenant, customer, cause, eventID string) error {
	for range engageAttempts {
		var (
			facts    Facts
			settings *LifecycleSettings
		)
		l := r.lifecycle
		lc, err := l.change(ctx, tenant, customer, "", "", true, func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error) {
			var err error
			if settings, err = l.Settings(ctx, tenant); err != nil {
				return nil, err
			}
			if facts, err = r.store.CustomerFacts(ctx, tenant, customer); err != nil {
				return nil, err
			}
			to := StageOf(facts, cur.GetStage(), ChurnWindow(settings), r.now())
			if to == cur.GetStage() {
				return nil, nil
			}
			w, err := climbTo(ctx, l.publisher, tenant, customer, cur, LifecycleMove{Stage: to, Cause: cause, EventID: eventID}, now)
			if err != nil {
				return nil, err
			}
			w.FactsVersion, w.CheckFacts = facts.Version, true
			w.SettingsVersion, w.CheckSettings = StoredSettingsEtag(settings), true
			return w, nil
		})
		if err != nil {
			return err
		}
		due := facts.ChurnDue(ChurnWindow(settings))
		if due.IsZero() || !due.After(r.now()) || lc.GetStage() == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
			return r.store.CancelChurn(ctx, tenant, customer)
		}
		err = r.store.ScheduleChurn(ctx, tenant, customer, facts.LastActive(), due, StoredSettingsEtag(settings))
		if !errors.Is(err, ErrStale) {
			return err
		}
		// The churn window changed since it was read: compute the stage and the schedule again.
	}
	return ErrLifecycleContention
}
