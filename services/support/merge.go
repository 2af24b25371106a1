package support

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// MergeStore re-points a merged customer's tickets.
type MergeStore interface {
	// MoveTickets re-points up to limit of the merged customer's tickets, with their indexes, in
	// one atomic write; 0 when none are left.
	MoveTickets(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
}

// mergeBatch is how many tickets one atomic write of a merge re-points.
const mergeBatch = 100

// Merges are support's reaction to a merge of two customers.
type Merges struct{ store MergeStore }

// NewMerges returns the reaction over store.
func NewMerges(store MergeStore) *Merges { return &Merges{store: store} }

// OnCustomerMerged re-points the merged customer's tickets to the survivor, a batch at a time;
// each batch takes the next of what the merged customer still has, so a redelivered event, or
// one whose consumer died half-way, does only what is left.
func (m *Merges) OnCustomerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	for {
		n, err := m.store.MoveTickets(ctx, tenant, merged, survivor, mergeBatch)
		if errors.Is(err, ErrStale) {
			continue // a ticket changed under the batch: read it again
		}
		if err != nil || n == 0 {
			return err
		}
	}
}
