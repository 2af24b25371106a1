// Package page is the one page type of the domain layers: the request of a page of a list and
// the page that answers it.
package page

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
