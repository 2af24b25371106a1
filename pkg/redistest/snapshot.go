package redistest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Snapshot is every key of a Redis with a digest of its value, to prove that a refused request
// wrote nothing at all (not only nothing under the keys a test thought of).
type Snapshot map[string]string

// BusKeys are the parts of the event bus's own keys (consumer leases and members), which the
// consumers renew on their own: no write changes them, so a snapshot about writes leaves them out.
var BusKeys = []string{":events:lease:", "crm:bus:"}

// Take reads every key (SCAN) and digests its value: DUMP, except for streams, whose entries are
// digested instead (a stream's DUMP also holds its consumer groups' read positions and times,
// which the services' idle consumers move without anything being written). Keys containing one of
// except are left out (for example the consumers' leases, which they renew on their own).
func Take(tb testing.TB, rdb redis.UniversalClient, except ...string) Snapshot {
	tb.Helper()
	ctx := context.Background()
	out := Snapshot{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if slices.ContainsFunc(except, func(part string) bool { return strings.Contains(key, part) }) {
			continue
		}
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			tb.Fatal(err)
		}
		var value string
		switch typ {
		case "none":
			continue // gone since the scan (an expiring key)
		case "stream":
			entries, err := rdb.XRange(ctx, key, "-", "+").Result()
			if err != nil {
				tb.Fatal(err)
			}
			value = fmt.Sprint(entries)
		default:
			value, err = rdb.Dump(ctx, key).Result()
			if err != nil && err != redis.Nil {
				tb.Fatal(err)
			}
		}
		out[key] = fmt.Sprintf("%s:%x", typ, sha256.Sum256([]byte(value)))
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Changed lists the keys added, removed or changed from s to later, sorted.
func (s Snapshot) Changed(later Snapshot) []string {
	var out []string
	for k, v := range later {
		if s[k] != v {
			out = append(out, k)
		}
	}
	for k := range s {
		if _, ok := later[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
