package events

import (
	"time"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Effect names one effect of one handled event: what the redelivery guard remembers. A handler
// with several effects (an order moves a lifecycle, credits points, counts revenue) commits each
// with its own Effect, so a retry after some of them were applied applies only what is missing.
// An Effect without an event id (the zero Effect) is a write no event caused: Guard leaves it
// unguarded.
type Effect struct {
	EventID string
	// Name tells the effects of one event apart, for example "loyalty".
	Name string
}

// EffectOf is the effect name of event ev.
func EffectOf(ev *eventv1.Event, name string) Effect {
	return Effect{EventID: ev.GetId(), Name: name}
}

// SeenTTL is how long the guard remembers an effect: longer than any event stays in a stream
// (the retention's maximum age must stay below it), so every redelivery finds its marker.
const SeenTTL = 8 * 24 * time.Hour

// Guard is the one redelivery guard of every reacting service: it adds to w, the atomic write of
// the effect, a marker of e in scope (the reacting service's keys of the event's tenant, so the
// marker shares the effect's hash slot). The write then fails with commit.ErrAlreadyApplied if the
// effect was committed before, and changes nothing; the consumer counts that as handled.
func Guard(w *commit.Write, scope keyspace.Scope, e Effect) *commit.Write {
	if e.EventID == "" {
		return w
	}
	return w.Once(scope.Key("seen", e.EventID, e.Name), int(SeenTTL.Seconds()))
}
