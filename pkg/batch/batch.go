// Package batch holds what every batch method shares (AIP-231, AIP-233): a batch get is all or
// nothing, naming what is missing; a batch create runs its items side by side and reports each.
package batch

import (
	"context"
	"strings"
	"sync"

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

// Each runs create for every item, parallel at a time, and returns each item's result and error,
// in order. It stops early only when ctx ends.
func Each[In, Out any](ctx context.Context, items []In, create func(context.Context, In) (Out, error)) ([]Out, []error) {
	out, errs := make([]Out, len(items)), make([]error, len(items))
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, item := range items {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
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
