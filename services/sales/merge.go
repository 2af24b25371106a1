package sales

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// How a merge reaches sales: on "marketing.customer.merged" sales first records that the merged
// customer lives on as the survivor (the 360 of the merged id answers with merged_into), then
// re-points the merged customer's records a batch at a time (each batch one atomic write of the
// records and their indexes, checked at the versions read), and last combines the values. Each
// step finds what is left by the merged customer's id, so a redelivered event, or one whose
// consumer died half-way, does only what is left.

// MergeStore re-points a merged customer's sales records.
type MergeStore interface {
	// MarkMerged records that merged lives on as survivor.
	MarkMerged(ctx context.Context, tenant, merged, survivor string) error
	// SurvivorOf is the customer a merged customer lives on as, "" when customer was not merged.
	SurvivorOf(ctx context.Context, tenant, customer string) (string, error)
	// MoveContacts re-points up to limit of the merged customer's contacts (their customer
	// index); 0 when none are left.
	MoveContacts(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
	// MoveOrders re-points up to limit of the merged customer's orders; 0 when none are left.
	MoveOrders(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
	// IndexOpportunitiesByCustomer puts the tenant's deals written before the index of deals by
	// customer existed into it (once per tenant; later calls return at once).
	IndexOpportunitiesByCustomer(ctx context.Context, tenant string) error
	// MoveOpportunities re-points up to limit of the merged customer's deals (their customer
	// index); 0 when none are left.
	MoveOpportunities(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
}

// mergeBatch is how many records one atomic write of a merge re-points.
const mergeBatch = 100

// repoint moves the merged customer's contacts, orders and deals to the survivor.
func (r *Reactions) repoint(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	s := r.env.Store
	if err := s.MarkMerged(ctx, tenant, merged, survivor); err != nil {
		return err
	}
	if err := s.IndexContactsByCustomer(ctx, tenant); err != nil {
		return err
	}
	if err := s.IndexOpportunitiesByCustomer(ctx, tenant); err != nil {
		return err
	}
	for _, move := range []func(ctx context.Context, tenant, merged, survivor string, limit int) (int, error){
		s.MoveContacts, s.MoveOrders, s.MoveOpportunities,
	} {
		if err := movePages(ctx, tenant, merged, survivor, move); err != nil {
			return err
		}
	}
	return nil
}

// movePages re-points the merged customer's records a page at a time until none are left; a
// record edited meanwhile makes its page be read again.
func movePages(ctx context.Context, tenant, merged, survivor string, move func(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)) error {
	for stale := 0; ; {
		n, err := move(ctx, tenant, merged, survivor, mergeBatch)
		if errors.Is(err, ErrStale) && stale < writeAttempts {
			stale++
			continue
		}
		if err != nil || n == 0 {
			return err
		}
	}
}
