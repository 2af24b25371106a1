package product

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// MergeStore re-points a merged customer's subscriptions and entitlements.
type MergeStore interface {
	// MoveSubscriptions re-points up to limit of the merged customer's subscriptions (with their
	// grants, owned counts and seats) in one atomic write; 0 when none are left.
	MoveSubscriptions(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
	// MoveGrantHistory gives the survivor how the merged customer's grants ended, for products
	// the survivor has no such record of, and drops the merged customer's.
	MoveGrantHistory(ctx context.Context, tenant, merged, survivor string) error
}

// mergeBatch is how many subscriptions one atomic write of a merge re-points.
const mergeBatch = 100

// OnCustomerMerged re-points the merged customer's subscriptions and entitlements to the
// survivor, a batch at a time. Each batch takes the next of what the merged customer still has,
// so a redelivered event, or one whose consumer died half-way, does only what is left.
func (s *Subscriptions) OnCustomerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	store, ok := s.store.(MergeStore)
	if !ok {
		return errors.New("product: the store cannot merge customers")
	}
	for {
		n, err := store.MoveSubscriptions(ctx, tenant, merged, survivor, mergeBatch)
		if errors.Is(err, ErrStale) {
			continue // a subscription changed under the batch: read it again
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return store.MoveGrantHistory(ctx, tenant, merged, survivor)
}
