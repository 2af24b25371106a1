package sales

import (
	"context"
	"errors"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// How an erasure reaches sales: marketing erases the person and announces
// "marketing.customer.erased" (ids only); sales then deletes every contact that names the
// customer (name, e-mail, phone), each as a contact delete does: one atomic write of the record,
// its e-mail and customer entries and its list and search indexes, with its
// "sales.contact.deleted" event, under the erase event's redelivery guard. A person may have more
// than one contact (a merge, a second e-mail); the index of contacts by customer finds them all.
// Orders, deals and the customer's value stay: ids, amounts and times, no personal data.

// EraseStore finds and erases an erased customer's contacts.
type EraseStore interface {
	// ContactsOfCustomer returns the next limit contacts of the customer after cursor (their
	// index; IndexContactsByCustomer completes it); next is "" at the end.
	ContactsOfCustomer(ctx context.Context, tenant, customer, cursor string, limit int) (found []*Contact, next string, err error)
	// EraseContact removes c (as read) as DeleteContact does, once per applied effect: ErrStale
	// when c changed, ErrAlreadyApplied when the effect was committed before.
	EraseContact(ctx context.Context, tenant string, c *Contact, applied events.Effect, event []byte) error
}

// eraseBatch is how many contacts one step of an erasure reads.
const eraseBatch = 500

// customerErased deletes every contact of the erased customer. A redelivered event finds the
// contacts gone (or their guard set) and changes nothing.
func (r *Reactions) customerErased(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerErased) error {
	customer := p.GetCustomerId()
	if customer == "" {
		return nil
	}
	if err := r.env.Store.IndexContactsByCustomer(ctx, ev.GetTenantId()); err != nil {
		return err
	}
	cursor := ""
	for {
		found, next, err := r.env.Store.ContactsOfCustomer(ctx, ev.GetTenantId(), customer, cursor, eraseBatch)
		if err != nil {
			return err
		}
		for _, c := range found {
			if err := r.eraseContact(ctx, ev, c); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// eraseContact deletes one contact of the erased customer, read again when it changed meanwhile.
func (r *Reactions) eraseContact(ctx context.Context, ev *eventv1.Event, c *Contact) error {
	tenant, customer := ev.GetTenantId(), c.GetCustomerId()
	for range writeAttempts {
		event, err := r.env.contactEvent(ctx, salesv1.EventContactDeleted, tenant, c)
		if err != nil {
			return err
		}
		err = r.env.Store.EraseContact(ctx, tenant, c, events.EffectOf(ev, "erase-contact:"+c.GetId()), event)
		if !errors.Is(err, ErrStale) {
			if errors.Is(err, ErrAlreadyApplied) {
				return nil
			}
			return err
		}
		if c, err = r.env.Store.GetContact(ctx, tenant, c.GetId()); errors.Is(err, ErrContactNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if c.GetCustomerId() != customer {
			return nil // a merge moved it to another person meanwhile
		}
	}
	return ErrContention
}
