// Package batch holds what every batch method shares (AIP-231, AIP-233): a batch get is all or
// nothing, naming what is missing; a batch create runs its items side by side and reports each.
package batch

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
)

// All returns the items read for ids (nil where there is none), or notFound with the ids that
// have none in its metadata ("missing_ids", comma-separated): a batch get is all or nothing.
func All[T comparable](items []T, ids []string, notFound *apierr.Error) ([]T, error) {
	var zero T
	var missing []string
	for i, item := range items {
		if item == zero {
			missing = append(missing, ids[i])
		}
	}
	if len(missing) > 0 {
		return nil, notFound.With("missing_ids", strings.Join(missing, ","))
	}
	return items, nil
}

// parallel is how many items of a batch create run at once: enough to keep the store busy,
// few enough to leave room for other calls.
const parallel = 16

// ErrNotAttempted is a batch create's item that was not started because the call's deadline was
// near: it wrote nothing, and only it needs sending again. Were it started and cut by the
// deadline, the whole call would fail with items written that a retry would apply twice.
var ErrNotAttempted = apierr.New(apierr.Aborted, "BATCH_ITEM_NOT_ATTEMPTED",
	"not attempted: the call's deadline was near; send this item again (the other items' results stand)")

// StartBy is a context that ends when a batch create stops starting items: a third of the time
// its call has left before its deadline, kept for the items started to finish; with ctx when the
// call has no deadline.
func StartBy(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/3))
}

// Each runs create for every item, parallel at a time, and returns each item's result and error,
// in order. Once start ends (StartBy) it starts no more: those items are ErrNotAttempted.
func Each[In, Out any](ctx, start context.Context, items []In, create func(context.Context, In) (Out, error)) ([]Out, []error) {
	out, errs := make([]Out, len(items)), make([]error, len(items))
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, item := range items {
		select {
		case slots <- struct{}{}:
		case <-start.Done():
		}
		if start.Err() != nil {
			errs[i] = ErrNotAttempted
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			out[i], errs[i] = create(ctx, item)
		})
	}
	wg.Wait()
	return out, errs
}
