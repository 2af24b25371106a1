// Package page is the one page type of the domain layers: the request of a page of a list and
// the page that answers it.
package page

import "context"

// Request asks for one page of a list.
type Request struct {
	// After is the cursor after which the page starts: the previous page's Next; "" for the
	// first page.
	After string
	// Limit is how many items the page holds at most.
	Limit int
}

// Page is one page of a list: its items and the cursor of the next page, "" on the last. The
// cursor is what the caller signs into its page token (pkg/pagetoken), bound to the query.
type Page[T any] struct {
	Items []T
	Next  string
}

// Each reads a list from its first page to its last, limit items a page, and hands each page's
// items to send: an export streams a whole list in bounded memory, one page at a time.
func Each[T any](ctx context.Context, limit int, list func(context.Context, Request) (Page[T], error), send func([]T) error) error {
	req := Request{Limit: limit}
	for {
		p, err := list(ctx, req)
		if err != nil {
			return err
		}
		if len(p.Items) > 0 {
			if err := send(p.Items); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		req.After = p.Next
	}
}
