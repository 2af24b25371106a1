package marketing

import "errors"

// afresh runs change, a read → etag check → merge → conditional write, again while its write
// loses a race (ErrStale): a request without an etag applies its fields to whatever is stored
// instead of being refused for a change it never saw, and one with an etag finds it stale on the
// re-read. After moveAttempts lost races it answers contention.
func afresh[T any](contention error, change func() (T, error)) (T, error) {
	for range moveAttempts {
		v, err := change()
		if !errors.Is(err, ErrStale) {
			return v, err
		}
	}
	var zero T
	return zero, contention
}
