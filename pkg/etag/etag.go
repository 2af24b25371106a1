// Package etag is the one optimistic-concurrency check of every resource (AIP-154): an etag is
// the resource's version, counting up from First with each change, and a request that carries one
// applies only to that version.
package etag

import (
	"errors"
	"strconv"
)

// First is the etag of a new resource.
const First = "1"

// Next is the etag of the version after etag.
func Next(etag string) string {
	n, _ := strconv.ParseUint(etag, 10, 64)
	return strconv.FormatUint(n+1, 10)
}

// Check returns mismatch (the resource's ABORTED error) when the request carries an etag that is
// not the stored one; a request without an etag applies to whatever is stored.
func Check(requested, stored string, mismatch error) error {
	if requested != "" && requested != stored {
		return mismatch
	}
	return nil
}

// Attempts bounds how often Retry tries a change that keeps losing races.
const Attempts = 8

// Retry runs change (read, Check the request's etag, edit, write conditional on the version read)
// again while its write loses a race (an error that is stale): a request without an etag applies
// its change to whatever is stored instead of being refused for a change it never saw, and one
// with an etag meets its Check on the re-read. After Attempts lost races it answers contention.
// stale must be an error of its own, not one the mismatch error of Check matches: a stale etag
// ends the change, it is not retried.
func Retry[T any](stale, contention error, change func() (T, error)) (T, error) {
	for range Attempts {
		v, err := change()
		if !errors.Is(err, stale) {
			return v, err
		}
	}
	var none T
	return none, contention
}
