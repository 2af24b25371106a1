package product

import (
	"context"
	"errors"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// MergeStore re-points a merged customer's subscriptions, entitlements and usage.
type MergeStore interface {
	// RecordMerge notes that merged now lives on as survivor, so an order about merged that
	// arrives later is placed for the survivor (PlaceOrder refuses it with a *MergedError).
	RecordMerge(ctx context.Context, tenant, merged, survivor string) error
	// MoveSubscriptions re-points up to limit of the merged customer's subscriptions (with their
	// grants, owned counts and seats) in one atomic write; 0 when none are left.
	MoveSubscriptions(ctx context.Context, tenant, merged, survivor string, limit int) (int, error)
	// MoveGrantHistory gives the survivor how the merged customer's grants ended, for products
	// the survivor has no such record of, and drops the merged customer's.
	MoveGrantHistory(ctx context.Context, tenant, merged, survivor string) error
	// MoveUsage adds the merged customer's usage counters to the survivor's in one atomic write
	// (totals added, last uses the later, users and months united) and deletes the merged
	// customer's usage keys, announced adoption and rescoring; with nothing left, it does nothing.
	MoveUsage(ctx context.Context, tenant, merged, survivor string) error
}

// mergeBatch is how many subscriptions one atomic write of a merge re-points.
const mergeBatch = 100

// Merges re-point a merged customer's product records to the survivor.
type Merges struct {
	store MergeStore
	usage *Usage
}

// NewMerges returns the merge reaction; usage rescores the survivor afterwards.
func NewMerges(store MergeStore, usage *Usage) *Merges {
	return &Merges{store: store, usage: usage}
}

// OnCustomerMerged re-points the merged customer's subscriptions and entitlements to the
// survivor, a batch at a time, then moves its usage and scores the survivor's adoption again
// from the combined counters (announcing a band change like usage does). Each step takes what
// the merged customer still has, so a redelivered event, or one whose consumer died half-way,
// does only what is left. Usage moves after the subscriptions: a usage write names the
// subscription's version, so none lands on the merged customer once its subscriptions moved.
func (m *Merges) OnCustomerMerged(ctx context.Context, ev *eventv1.Event, p *marketingv1.CustomerMerged) error {
	tenant, survivor, merged := ev.GetTenantId(), p.GetSurvivorCustomerId(), p.GetMergedCustomerId()
	if survivor == "" || merged == "" || survivor == merged {
		return nil
	}
	// First, so that no order committed after this point grants anything to the merged customer:
	// what is committed before it is moved below.
	if err := m.store.RecordMerge(ctx, tenant, merged, survivor); err != nil {
		return err
	}
	for {
		n, err := m.store.MoveSubscriptions(ctx, tenant, merged, survivor, mergeBatch)
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
	if err := m.store.MoveGrantHistory(ctx, tenant, merged, survivor); err != nil {
		return err
	}
	if err := m.store.MoveUsage(ctx, tenant, merged, survivor); err != nil {
		return err
	}
	return m.usage.rescore(ctx, tenant, survivor)
}
