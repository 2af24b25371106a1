// Package etag is the one optimistic-concurrency check of every resource (AIP-154): an etag is
// the resource's version, counting up from First with each change, and a request that carries one
// applies only to that version.
package etag

import "strconv"

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
