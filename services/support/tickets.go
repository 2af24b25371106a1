package support

import (
	"context"
	"errors"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// attempts bounds optimistic retries of a change racing other writes to the same ticket.
const attempts = 8

// updatableTicketFields are the fields UpdateTicket may change (its update_mask paths).
var updatableTicketFields = []string{"subject", "description", "priority", "tags"}

// Tickets are the ticket use cases.
type Tickets struct {
	store        Store
	known        CustomerCheck
	entitlements Entitlements
	publisher    events.Publisher
	validator    protovalidate.Validator
	now          Clock
}

// NewTickets returns the use cases over store.
func NewTickets(store Store, known CustomerCheck, entitlements Entitlements, publisher events.Publisher, validator protovalidate.Validator, now Clock) *Tickets {
	return &Tickets{store: store, known: known, entitlements: entitlements, publisher: publisher, validator: validator, now: now}
}

// Create opens a ticket, NEW, with due times from the tenant's policy for its priority, for a
// customer marketing's registry has. A ticket about a product is opened only if the product
// service says the customer is entitled to it.
func (s *Tickets) Create(ctx context.Context, tenant string, in *Ticket) (*Ticket, error) {
	if in == nil {
		return nil, apierr.Invalid("ticket", "required")
	}
	if err := s.known.Check(ctx, tenant, in.GetCustomerId(), "ticket.customer_id"); err != nil {
		return nil, err
	}
	var grant string
	if in.GetProductId() != "" {
		var err error
		if grant, err = s.entitlements.Check(ctx, in.GetCustomerId(), in.GetProductId()); err != nil {
			return nil, err
		}
	}
	policies, err := s.store.SlaPolicies(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	t := &Ticket{
		Id:            uuid.Must(uuid.NewV7()).String(),
		CustomerId:    in.GetCustomerId(),
		ProductId:     in.GetProductId(),
		Subject:       in.GetSubject(),
		Description:   in.GetDescription(),
		Priority:      in.GetPriority(),
		Channel:       in.GetChannel(),
		Tags:          in.GetTags(),
		Status:        supportv1.TicketStatus_TICKET_STATUS_NEW,
		EntitlementId: grant,
		CreateTime:    timestamppb.New(now),
		UpdateTime:    timestamppb.New(now),
		Etag:          etag.First,
	}
	if t.Priority == supportv1.TicketPriority_TICKET_PRIORITY_UNSPECIFIED {
		t.Priority = supportv1.TicketPriority_TICKET_PRIORITY_NORMAL
	}
	if t.Channel == supportv1.TicketChannel_TICKET_CHANNEL_UNSPECIFIED {
		t.Channel = supportv1.TicketChannel_TICKET_CHANNEL_WEB
	}
	policy := policyFor(policies, t.GetPriority())
	var hours *supportv1.BusinessHours
	if policy.GetBusinessHours() {
		settings, err := settingsOrDefault(ctx, s.store, tenant)
		if err != nil {
			return nil, err
		}
		hours = settings.GetBusinessHours()
	}
	startClocks(t, policy, hours, now)
	_, ev, err := s.publisher.Envelope(ctx, supportv1.EventTicketCreated.Of(&supportv1.TicketCreated{
		Ticket: facts(t), FirstResponseDueTime: t.GetFirstResponse().GetDueTime(), ResolutionDueTime: t.GetResolution().GetDueTime(),
	}), tenant, t.GetCustomerId(), now)
	if err != nil {
		return nil, err
	}
	if err := s.store.SaveTicket(ctx, tenant, TicketWrite{Ticket: t, Tally: tallyChange(nil, t), Events: [][]byte{ev}}); err != nil {
		return nil, err
	}
	return withRemaining(t, now), nil
}

// Get returns one ticket with the time left on its clocks.
func (s *Tickets) Get(ctx context.Context, tenant, id string) (*Ticket, error) {
	t, err := s.store.GetTicket(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return withRemaining(t, s.now().UTC()), nil
}

// GetMany returns tickets by id, in order, with their SLA clocks as of now: all, or
// ErrTicketNotFound naming the missing.
func (s *Tickets) GetMany(ctx context.Context, tenant string, ids []string) ([]*Ticket, error) {
	found, err := s.store.GetTickets(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	if found, err = batch.All(found, ids, ErrTicketNotFound); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	for i, t := range found {
		found[i] = withRemaining(t, now)
	}
	return found, nil
}

// List returns a page of tickets of an index, newest first.
func (s *Tickets) List(ctx context.Context, tenant string, ix TicketIndex, p page.Request) (page.Page[*Ticket], error) {
	tickets, err := s.store.ListTickets(ctx, tenant, ix, p)
	if err != nil {
		return page.Page[*Ticket]{}, err
	}
	now := s.now().UTC()
	for _, t := range tickets.Items {
		withRemaining(t, now)
	}
	return tickets, nil
}

// Update changes the fields named by mask (when it is empty, the fields `in` sets). A stale etag
// is ABORTED. A new priority moves the running clocks to that priority's targets.
func (s *Tickets) Update(ctx context.Context, tenant string, in *Ticket, mask *fieldmaskpb.FieldMask) (*Ticket, error) {
	if in == nil {
		return nil, apierr.Invalid("ticket", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("ticket.id", "must be a ticket id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableTicketFields, "update_mask")
	if err != nil {
		return nil, err
	}
	policies, err := s.store.SlaPolicies(ctx, tenant)
	if err != nil {
		return nil, err
	}
	t, _, err := s.change(ctx, tenant, in.GetId(), in.GetEtag(), func(t *Ticket, now time.Time, c *changes) error {
		if len(fields.Fields) == 0 { // nothing to change: an untouched ticket is not written
			return fields.Unchanged(t, in)
		}
		if t.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			return refusedStatus(t.GetStatus(), "update", closedNeeds)
		}
		before := t.GetPriority()
		if err := protoupdate.Apply(t, in, fields); err != nil {
			return err
		}
		if t.Priority == supportv1.TicketPriority_TICKET_PRIORITY_UNSPECIFIED {
			t.Priority = supportv1.TicketPriority_TICKET_PRIORITY_NORMAL
		}
		if err := protoupdate.Validate(s.validator, "ticket", t); err != nil {
			return err
		}
		if t.GetPriority() != before {
			retarget(t, policyFor(policies, t.GetPriority()), now)
			// A shorter target may already have run out.
			c.breaches = append(c.breaches, markBreaches(t, now)...)
		}
		c.changed(supportv1.EventTicketUpdated.Of(&supportv1.TicketChanged{PreviousStatus: t.GetStatus()}))
		return nil
	})
	return t, err
}

// Assign gives a ticket to an agent; a NEW ticket becomes OPEN. A stale ifMatch is ABORTED.
func (s *Tickets) Assign(ctx context.Context, tenant, id, assignee, ifMatch string) (*Ticket, error) {
	t, _, err := s.change(ctx, tenant, id, ifMatch, func(t *Ticket, now time.Time, c *changes) error {
		if t.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			return refusedStatus(t.GetStatus(), "assign", closedNeeds)
		}
		from := t.GetStatus()
		t.AssigneeId = assignee
		if from == supportv1.TicketStatus_TICKET_STATUS_NEW {
			setStatus(t, supportv1.TicketStatus_TICKET_STATUS_OPEN, now)
		}
		c.changed(supportv1.EventTicketAssigned.Of(&supportv1.TicketChanged{PreviousStatus: from}))
		return nil
	})
	return t, err
}

// Move moves a ticket along the status machine; an illegal move is FAILED_PRECONDITION, a stale
// ifMatch ABORTED (even when the move would also be refused).
func (s *Tickets) Move(ctx context.Context, tenant, id string, m Move, ifMatch string) (*Ticket, error) {
	var autoCloseDays int32
	if m == MoveSolve {
		settings, err := settingsOrDefault(ctx, s.store, tenant)
		if err != nil {
			return nil, err
		}
		autoCloseDays = settings.GetAutoCloseDays()
	}
	t, _, err := s.change(ctx, tenant, id, ifMatch, func(t *Ticket, now time.Time, c *changes) error {
		return moveTicket(t, m, now, autoCloseDays, c)
	})
	return t, err
}

// moveTicket applies move m to t at now.
func moveTicket(t *Ticket, m Move, now time.Time, autoCloseDays int32, c *changes) error {
	if !m.allowed(t.GetStatus()) {
		return refusedMove(t.GetStatus(), m)
	}
	from := t.GetStatus()
	if r := t.GetResolution(); m == MoveReopen && r != nil {
		// The solve is taken back: the clock runs on from where the solve stopped it, the time
		// solved counting as paused.
		r.MetTime = nil
	}
	setStatus(t, moves[m].to, now)
	switch m {
	case MoveSolve:
		t.SolveTime = timestamppb.New(now)
		t.AutoCloseTime = timestamppb.New(now.AddDate(0, 0, int(autoCloseDays)))
		if running(t.GetResolution()) {
			t.Resolution.MetTime = timestamppb.New(now)
		}
	case MoveReopen:
		t.AutoCloseTime = nil
	case MoveClose:
		t.CloseTime = timestamppb.New(now)
		t.AutoCloseTime = nil
	}
	c.changed(moves[m].event.Of(&supportv1.TicketChanged{PreviousStatus: from,
		ResolutionMet: done(t.GetStatus()) && t.GetResolution().GetMetTime() != nil && !t.GetResolution().GetBreached()}))
	return nil
}

// Rate records the customer's satisfaction with a SOLVED ticket, once. A stale ifMatch is ABORTED.
func (s *Tickets) Rate(ctx context.Context, tenant, id string, score int32, comment, ifMatch string) (*Ticket, error) {
	t, _, err := s.change(ctx, tenant, id, ifMatch, func(t *Ticket, now time.Time, c *changes) error {
		if t.GetStatus() != supportv1.TicketStatus_TICKET_STATUS_SOLVED {
			return refusedStatus(t.GetStatus(), "rate", "only a TICKET_STATUS_SOLVED ticket is rated")
		}
		if t.GetCsat() != nil {
			return ErrAlreadyRated
		}
		t.Csat = &supportv1.Csat{Score: score, Comment: comment, RateTime: timestamppb.New(now)}
		c.changed(supportv1.EventCsatRated.Of(&supportv1.CsatRated{Score: score}))
		return nil
	})
	return t, err
}

// changes collects what an edit did to a ticket: the events to emit and the comment to add.
type changes struct {
	touched  bool
	breaches []supportv1.SlaTarget
	comment  *Comment
	// events are emitted once the edit is done, their payloads completed with the ticket's facts.
	events []eventv1.Body
}

// changed records that the edit changed the ticket and emits the event.
func (c *changes) changed(event eventv1.Body) {
	c.touched = true
	c.events = append(c.events, event)
}

// edit changes a fresh copy of a ticket at now, or fails.
type edit func(t *Ticket, now time.Time, c *changes) error

// change reads a ticket, applies e to a copy and commits it with its events, retrying when another
// write got in between. A set ifMatch must be the etag of the version read, which the write is
// conditional on; it is checked before e, so a stale one is ErrTicketEtag whatever e would say,
// and a write that lost a race re-reads and reports it. Before e, every clock that has run out is
// marked breached, so the breach and its event are recorded exactly once, by the sweep or by the
// first change after it.
func (s *Tickets) change(ctx context.Context, tenant, id, ifMatch string, e edit) (*Ticket, *Comment, error) {
	for range attempts {
		prev, err := s.store.GetTicket(ctx, tenant, id)
		if err != nil {
			return nil, nil, err
		}
		if err := etag.Check(ifMatch, prev.GetEtag(), ErrTicketEtag); err != nil {
			return nil, nil, err
		}
		now := s.now().UTC()
		next := proto.CloneOf(prev)
		c := &changes{breaches: markBreaches(next, now)}
		if err := e(next, now, c); err != nil {
			return nil, nil, err
		}
		w := TicketWrite{Prev: prev, Comment: c.comment}
		if c.touched || len(c.breaches) > 0 {
			next.UpdateTime = timestamppb.New(now)
			next.Etag = etag.Next(prev.GetEtag())
			w.Ticket, w.Tally = next, tallyChange(prev, next)
		} else {
			next = prev
		}
		if w.Events, err = s.envelopes(ctx, tenant, next, now, c); err != nil {
			return nil, nil, err
		}
		err = s.store.SaveTicket(ctx, tenant, w)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return withRemaining(proto.CloneOf(next), now), c.comment, nil
	}
	return nil, nil, ErrContention
}

// envelopes are the events of a change: its breaches first, then what the edit emitted.
func (s *Tickets) envelopes(ctx context.Context, tenant string, t *Ticket, now time.Time, c *changes) ([][]byte, error) {
	f := facts(t)
	var out [][]byte
	add := func(body eventv1.Body) error {
		_, ev, err := s.publisher.Envelope(ctx, body, tenant, t.GetCustomerId(), now)
		out = append(out, ev)
		return err
	}
	for _, target := range c.breaches {
		clock := t.GetFirstResponse()
		if target == supportv1.SlaTarget_SLA_TARGET_RESOLUTION {
			clock = t.GetResolution()
		}
		if err := add(supportv1.EventTicketSlaBreached.Of(&supportv1.TicketSlaBreached{Ticket: f, Target: target, DueTime: clock.GetDueTime()})); err != nil {
			return nil, err
		}
	}
	for _, ev := range c.events {
		switch p := ev.Payload().(type) {
		case *supportv1.TicketChanged:
			p.Ticket = f
		case *supportv1.CsatRated:
			p.Ticket = f
		case *supportv1.CommentAdded:
			p.Ticket = f
		}
		if err := add(ev); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// facts are what events say about a ticket.
func facts(t *Ticket) *supportv1.TicketFacts {
	return &supportv1.TicketFacts{
		TicketId: t.GetId(), CustomerId: t.GetCustomerId(), ProductId: t.GetProductId(), Priority: t.GetPriority(),
		Channel: t.GetChannel(), Status: t.GetStatus(), AssigneeId: t.GetAssigneeId(),
	}
}
