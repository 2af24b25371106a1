package marketing

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// CustomerLifecycle is a customer's stage, risk flag and history.
type CustomerLifecycle = marketingv1.CustomerLifecycle

// Stage is a lifecycle stage.
type Stage = marketingv1.LifecycleStage

// Errors of the lifecycle.
var (
	ErrLifecycleNotFound = apierr.New(apierr.NotFound, "LIFECYCLE_NOT_FOUND", "the customer has no lifecycle")
	ErrLifecycleMove     = apierr.New(apierr.FailedPrecondition, "LIFECYCLE_MOVE",
		"the customer's stage does not allow this move")
	ErrLifecycleContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the lifecycle kept changing concurrently; retry")
	ErrLifecycleEtag       = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the lifecycle changed since it was read; read it again and retry")
)

// ErrAlreadyApplied means the causing event was applied before: the write changed nothing.
var ErrAlreadyApplied = errors.New("marketing: event already applied")

// ladder is the order stages move forward in; CHURNED stands apart.
var ladder = []Stage{
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT,
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT,
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER,
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER,
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT,
	marketingv1.LifecycleStage_LIFECYCLE_STAGE_ADVOCATE,
}

// AllStages are the stages in funnel order: the ladder, then CHURNED.
var AllStages = append(slices.Clone(ladder), marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED)

func isCustomerStage(s Stage) bool {
	return slices.Index(ladder, s) >= slices.Index(ladder, marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER)
}

// CanMoveStage reports whether a customer may move between stages; from is UNSPECIFIED for a
// customer entering the lifecycle.
func CanMoveStage(from, to Stage) bool {
	churned := marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED
	switch {
	case to == from || !slices.Contains(AllStages, to):
		return false
	case from == marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED:
		return to != churned
	case to == churned:
		return isCustomerStage(from)
	case from == churned: // a new order or subscription brings the customer back
		return to == marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER || to == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT
	}
	return slices.Index(ladder, to) > slices.Index(ladder, from)
}

// LifecycleMove asks for a customer to move to a stage.
type LifecycleMove struct {
	Stage Stage
	// Cause says what moved the customer, for example "sales.order.placed".
	Cause string
	// EventID is the causing event's id, if any: a redelivered event moves nothing.
	EventID string
	// IfMatch, when set, is the lifecycle's etag the move applies to (see Lifecycle.change).
	IfMatch string
}

// LifecycleWrite is one change of a lifecycle, committed atomically with the funnel counters, the
// stage and at-risk indexes, its events and the causing event's redelivery guard.
type LifecycleWrite struct {
	Next *CustomerLifecycle
	// Prev is the lifecycle as read; nil for a customer entering the lifecycle.
	Prev   *CustomerLifecycle
	Events [][]byte
	// Applied is the causing event's effect, if an event caused the change.
	Applied events.Effect
	// Funnel are the counter increments of the move (none for an at-risk change); PeriodFunnel
	// the ones counted again in each of FunnelPeriods, the month and quarter of the move.
	Funnel, PeriodFunnel map[string]int64
	FunnelPeriods        []string
	// CheckFacts makes the write conditional on the customer's ladder facts still being at
	// FactsVersion: a stage computed from facts is never committed over newer facts.
	CheckFacts   bool
	FactsVersion string
	// CheckSettings makes the write conditional on the tenant's lifecycle settings still being
	// at SettingsVersion (StoredSettingsEtag): a stage computed with a churn window is never
	// committed after the window changed.
	CheckSettings   bool
	SettingsVersion string
	// CheckCustomer refuses the write, inside its commit, unless the registry has the customer
	// unmerged (customerref's NOT_FOUND or CUSTOMER_MERGED).
	CheckCustomer bool
}

// LifecycleStore keeps lifecycles and the funnel counters.
type LifecycleStore interface {
	LifecycleSettingsStore
	// Lifecycle returns a customer's lifecycle or ErrLifecycleNotFound.
	Lifecycle(ctx context.Context, tenant, customer string) (*CustomerLifecycle, error)
	// RegisteredLifecycle is Lifecycle after the registry's word on the customer, in the same
	// round trip: customerref's NOT_FOUND or CUSTOMER_MERGED unless the registry has them unmerged.
	RegisteredLifecycle(ctx context.Context, tenant, customer string) (*CustomerLifecycle, error)
	// PutLifecycle commits w if w.Prev is still current (ErrStale otherwise) and w.Applied was
	// not applied before (ErrAlreadyApplied).
	PutLifecycle(ctx context.Context, tenant string, w LifecycleWrite) error
	// FunnelCounters returns the tenant's funnel counters.
	FunnelCounters(ctx context.Context, tenant string) (map[string]int64, error)
	// PeriodFunnelCounters returns the funnel counters of each period, in one round trip.
	PeriodFunnelCounters(ctx context.Context, tenant string, periods []string) ([]map[string]int64, error)
}

// Lifecycle are the lifecycle use cases. Move, SetAtRisk and ClearAtRisk are what other services'
// event handlers call.
type Lifecycle struct {
	store     LifecycleStore
	publisher events.Publisher
	now       func() time.Time
	// requireCustomer makes every change check the registry inside its commit (RequiringCustomers).
	requireCustomer bool
}

// NewLifecycle returns the use cases over store.
func NewLifecycle(store LifecycleStore, publisher events.Publisher, now func() time.Time) *Lifecycle {
	return &Lifecycle{store: store, publisher: publisher, now: now}
}

// RequiringCustomers returns these use cases for the API: every change is refused, with nothing
// written, unless the registry has the customer unmerged, checked inside the change's own commit.
// The event reactions keep the unchecked ones: their events are about customers the causing
// service checked, and a merge is followed by re-pointing, not refusals.
func (l *Lifecycle) RequiringCustomers() *Lifecycle {
	c := *l
	c.requireCustomer = true
	return &c
}

// Get returns a customer's lifecycle.
func (l *Lifecycle) Get(ctx context.Context, tenant, customer string) (*CustomerLifecycle, error) {
	return l.store.Lifecycle(ctx, tenant, customer)
}

// Move moves a customer along the stage machine (FAILED_PRECONDITION for a move it does not allow),
// recording the move in the history and the funnel. Concurrent moves serialize on the lifecycle's
// etag; a move whose event was applied before returns the lifecycle unchanged.
func (l *Lifecycle) Move(ctx context.Context, tenant, customer string, m LifecycleMove) (*CustomerLifecycle, error) {
	return l.change(ctx, tenant, customer, m.EventID, m.IfMatch, true, func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error) {
		if !CanMoveStage(cur.GetStage(), m.Stage) {
			return nil, ErrLifecycleMove.With("move", cur.GetStage().String()+" -> "+m.Stage.String())
		}
		return enterStage(ctx, l.publisher, tenant, customer, cur, m, now)
	})
}

// SetAtRisk flags a customer at risk for reason (a reason already standing changes nothing);
// ifMatch as in change.
func (l *Lifecycle) SetAtRisk(ctx context.Context, tenant, customer, reason, eventID,
	ifMatch string) (*CustomerLifecycle, error) {
	return l.change(ctx, tenant, customer, eventID, ifMatch, false, func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error) {
		if slices.Contains(cur.GetAtRiskReasons(), reason) {
			return nil, nil
		}
		return l.riskWrite(ctx, tenant, cur, append(slices.Clone(cur.GetAtRiskReasons()), reason), eventID, now)
	})
}

// ClearAtRisk withdraws a risk reason, or every reason when reason is empty; ifMatch as in change.
func (l *Lifecycle) ClearAtRisk(ctx context.Context, tenant, customer, reason, eventID,
	ifMatch string) (*CustomerLifecycle, error) {
	return l.change(ctx, tenant, customer, eventID, ifMatch, false, func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error) {
		left := slices.DeleteFunc(slices.Clone(cur.GetAtRiskReasons()), func(r string) bool { return reason == "" || r == reason })
		if len(left) == len(cur.GetAtRiskReasons()) {
			return nil, nil
		}
		return l.riskWrite(ctx, tenant, cur, left, eventID, now)
	})
}

// change reads, plans and commits a lifecycle change, retrying when another write got in between.
// plan returns nil when there is nothing to change. Without a lifecycle, only a move may start one.
// A set ifMatch must be the etag of the lifecycle the write replaces (ErrLifecycleEtag otherwise,
// before plan is asked, even for a change that would change nothing): a write that loses a race
// reads again and checks it again. A redelivered event answers as before, whatever ifMatch says:
// its change was made.
func (l *Lifecycle) change(ctx context.Context, tenant, customer, eventID, ifMatch string, mayStart bool,
	plan func(cur *CustomerLifecycle, now time.Time) (*LifecycleWrite, error)) (*CustomerLifecycle, error) {
	for range engageAttempts {
		read := l.store.Lifecycle
		if l.requireCustomer {
			read = l.store.RegisteredLifecycle // a change that would change nothing is refused too
		}
		cur, err := read(ctx, tenant, customer)
		if errors.Is(err, ErrLifecycleNotFound) && mayStart {
			cur, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if eventID != "" && slices.ContainsFunc(cur.GetHistory(), func(m *marketingv1.StageMove) bool { return m.GetCauseEventId() == eventID }) {
			return cur, nil // the move of this event is in the history: a redelivery
		}
		if err := etag.Check(ifMatch, cur.GetEtag(), ErrLifecycleEtag); err != nil {
			return nil, err
		}
		w, err := plan(cur, l.now().UTC())
		if err != nil || w == nil {
			return cur, err
		}
		w.Applied, w.CheckCustomer = lifecycleEffect(eventID), l.requireCustomer
		err = l.store.PutLifecycle(ctx, tenant, *w)
		switch {
		case errors.Is(err, ErrStale):
			continue
		case errors.Is(err, ErrAlreadyApplied):
			return l.store.Lifecycle(ctx, tenant, customer)
		case err != nil:
			return nil, err
		}
		return w.Next, nil
	}
	return nil, ErrLifecycleContention
}

// lifecycleEffect is the effect on a lifecycle of the event with id eventID ("" for none).
func lifecycleEffect(eventID string) events.Effect {
	if eventID == "" {
		return events.Effect{}
	}
	return events.Effect{EventID: eventID, Name: "lifecycle"}
}

// enterStage plans a move: the new stage, its history entry, its funnel counters and its event.
func enterStage(ctx context.Context, pub events.Publisher, tenant, customer string, cur *CustomerLifecycle, m LifecycleMove, now time.Time) (*LifecycleWrite, error) {
	ts := timestamppb.New(now)
	next := &CustomerLifecycle{CustomerId: customer}
	if cur != nil {
		next = proto.CloneOf(cur)
	}
	move := &marketingv1.StageMove{From: cur.GetStage(), To: m.Stage, Time: ts, Cause: m.Cause, CauseEventId: m.EventID}
	next.Stage, next.StageTime, next.UpdateTime = m.Stage, ts, ts
	next.History = append(next.History, move)
	next.Etag = etag.Next(cur.GetEtag())
	_, ev, err := pub.Envelope(ctx, marketingv1.EventLifecycleStageChanged.Of(
		&marketingv1.LifecycleStageChanged{CustomerId: customer, Move: move}), tenant, customer, now)
	if err != nil {
		return nil, err
	}
	var stayed time.Duration
	if cur != nil {
		stayed = now.Sub(cur.GetStageTime().AsTime())
	}
	w := &LifecycleWrite{Next: next, Prev: cur, Events: [][]byte{ev}, Funnel: funnelMove(cur.GetStage(), m.Stage, stayed)}
	w.PeriodFunnel, w.FunnelPeriods = periodCounters(w.Funnel), PeriodsOf(now)
	return w, nil
}

// climbTo plans the move to the stage a customer's facts give. A first purchase always passes
// FIRST_TIME_CUSTOMER: when the facts take someone not yet a customer (none, SUSPECT, PROSPECT)
// straight past it (a recurring product's first order makes a CLIENT; the order and subscription
// events, or a promoter answer, may arrive in any order), the rung is recorded on the way, in the
// same write and with the same cause: both history entries, both funnel moves (a stay of zero in
// FIRST_TIME_CUSTOMER) and both events. So the path, not only the final stage, is the same
// whatever the order of the events.
func climbTo(ctx context.Context, pub events.Publisher, tenant, customer string, cur *CustomerLifecycle, m LifecycleMove, now time.Time) (*LifecycleWrite, error) {
	first := marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER
	from := cur.GetStage()
	preCustomer := from == marketingv1.LifecycleStage_LIFECYCLE_STAGE_UNSPECIFIED || slices.Index(ladder, from) >= 0 && slices.Index(ladder, from) < slices.Index(ladder, first)
	if !preCustomer || m.Stage == first || !(isCustomerStage(m.Stage) || m.Stage == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED) {
		return enterStage(ctx, pub, tenant, customer, cur, m, now)
	}
	rung := m
	rung.Stage = first
	w1, err := enterStage(ctx, pub, tenant, customer, cur, rung, now)
	if err != nil {
		return nil, err
	}
	w2, err := enterStage(ctx, pub, tenant, customer, w1.Next, m, now)
	if err != nil {
		return nil, err
	}
	w2.Prev, w2.Events = cur, append(w1.Events, w2.Events...)
	for field, n := range w1.Funnel {
		w2.Funnel[field] += n
	}
	for field, n := range w1.PeriodFunnel {
		w2.PeriodFunnel[field] += n
	}
	return w2, nil
}

func (l *Lifecycle) riskWrite(ctx context.Context, tenant string, cur *CustomerLifecycle, reasons []string, eventID string, now time.Time) (*LifecycleWrite, error) {
	next := proto.CloneOf(cur)
	next.AtRiskReasons = reasons
	next.AtRisk = len(reasons) > 0
	next.UpdateTime = timestamppb.New(now)
	next.Etag = etag.Next(cur.GetEtag())
	_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLifecycleAtRiskChanged.Of(&marketingv1.CustomerAtRiskChanged{
		CustomerId: cur.GetCustomerId(), AtRisk: next.GetAtRisk(), Reasons: reasons, CauseEventId: eventID,
	}), tenant, cur.GetCustomerId(), now)
	if err != nil {
		return nil, err
	}
	return &LifecycleWrite{Next: next, Prev: cur, Events: [][]byte{ev}}, nil
}
