package support

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// How an erasure reaches support: marketing erases the person and announces
// "marketing.customer.erased" (ids only); support then removes the free text the person wrote or
// that was written about them: each ticket's subject becomes ErasedText, its description and its
// rating's comment are cleared and its comments deleted; each NPS answer's comment is cleared.
// The ids, statuses, priorities, times, SLA clocks, ratings' and NPS scores stay: they hold no
// personal data and the tenant's statistics count them.

// ErasedText is an erased ticket's subject (a subject is required, so it is not left empty).
const ErasedText = "[erased]"

// EraseStore redacts an erased customer's tickets and NPS answers.
type EraseStore interface {
	// EraseTickets redacts the next limit of the customer's tickets after cursor (RedactTicket,
	// each checked at the version read, ErrStale if one changed) and deletes their comments, in
	// one atomic write; next is "" at the end.
	EraseTickets(ctx context.Context, tenant, customer, cursor string, limit int) (next string, err error)
	// EraseNpsComments clears the comments of the next limit of the customer's NPS answers after
	// cursor in one atomic write; next is "" at the end.
	EraseNpsComments(ctx context.Context, tenant, customer, cursor string, limit int) (next string, err error)
}

// eraseBatch is how many tickets or answers one atomic write of an erasure redacts.
const eraseBatch = 100

// Erasures are support's reaction to the erasure of a customer.
type Erasures struct{ store EraseStore }

// NewErasures returns the reaction over store.
func NewErasures(store EraseStore) *Erasures { return &Erasures{store: store} }

// OnCustomerErased redacts the erased customer's tickets, then NPS answers, a batch at a time.
// The tickets stay the customer's (the id is no personal data), so a redelivered event, or one
// whose consumer died half-way, walks them again: what is redacted already is left as it is.
func (e *Erasures) OnCustomerErased(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerErased) error {
	tenant, customer := ev.GetTenantId(), p.GetCustomerId()
	if customer == "" {
		return nil
	}
	for _, erase := range []eraseStep{e.store.EraseTickets, e.store.EraseNpsComments} {
		if err := eraseAll(ctx, erase, tenant, customer); err != nil {
			return err
		}
	}
	return nil
}

// eraseStep redacts one batch after cursor; next is "" at the end.
type eraseStep func(ctx context.Context, tenant, customer, cursor string, limit int) (string, error)

// eraseAll runs erase batch after batch until the end.
func eraseAll(ctx context.Context, erase eraseStep, tenant, customer string) error {
	cursor := ""
	for {
		next, err := erase(ctx, tenant, customer, cursor, eraseBatch)
		if errors.Is(err, ErrStale) {
			continue // a ticket changed under the batch: read it again
		}
		if err != nil || next == "" {
			return err
		}
		cursor = next
	}
}

// RedactTicket returns t without its free text, nil when it has none left.
func RedactTicket(t *Ticket) *Ticket {
	next := proto.CloneOf(t)
	next.Subject, next.Description = ErasedText, ""
	if next.GetCsat() != nil {
		next.Csat.Comment = ""
	}
	if proto.Equal(next, t) {
		return nil
	}
	return next
}
