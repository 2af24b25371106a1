package support

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// MergeStore re-points a merged customer's tickets and NPS answers.
type MergeStore interface {
	// MoveTickets re-points up to limit of the merged customer's tickets, with their indexes, in
	// one atomic write; 0 when none are left.
	MoveTickets(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
	// MoveNpsResponses does the same for NPS answers.
	MoveNpsResponses(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
}

// mergeBatch is how many tickets one atomic write of a merge re-points.
const mergeBatch = 100

// Merges are support's reaction to a merge of two customers.
type Merges struct{ store MergeStore }

// NewMerges returns the reaction over store.
func NewMerges(store MergeStore) *Merges { return &Merges{store: store} }

// OnCustomerMerged re-points the merged customer's tickets, then NPS answers, to the survivor, a
// batch at a time; each batch takes the next of what the merged customer still has, so a
// redelivered event, or one whose consumer died half-way, does only what is left.
func (m *Merges) OnCustomerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	for _, move := range []moveBatch{m.store.MoveTickets, m.store.MoveNpsResponses} {
		if err := moveAll(ctx, move, tenant, merged, survivor); err != nil {
			return err
		}
	}
	return nil
}

// moveBatch re-points up to limit of a merged customer's records; 0 when none are left.
type moveBatch func(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)

// moveAll re-points batches with move until none is left.
func moveAll(ctx context.Context, move moveBatch, tenant, merged, survivor string) error {
	for {
		n, err := move(ctx, tenant, merged, survivor, mergeBatch)
		if errors.Is(err, ErrStale) {
			continue // a record changed under the batch: read it again
		}
		if err != nil || n == 0 {
			return err
		}
	}
}
