package commit

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/page"
)

// A bucketed index is a lexical sorted-set index (every member of score 0, ordered by member) kept
// as many small sorted sets instead of one: a directory <index>#d of the buckets' lower bounds and
// the buckets <index>#b<hex of the bound>, each holding the members from its bound up to the next
// bucket's (bucket.lua). A write splits a bucket before it would pass 64 members, half Redis's
// default zset-max-listpack-entries (128; a listpack's add and lookup walk it, so smaller buckets
// cost Redis less per write), so every bucket stays listpack-encoded: a 16-byte member costs about
// 20 bytes there, against about 100 in one large skiplist-encoded set (a 36-character UUID about
// 140). Members appended in order (UUIDv7 ids) fill their buckets; others leave them half full or
// more. A page reads the buckets it crosses, newest first or oldest first, in one script call:
// O(log n + page). Its keys share the index's hash tag, so a write that adds to it stays one
// atomic call on one cluster node.
//
// The member encoding is the caller's (PackUUID makes an id 16 bytes, ordered as its text);
// cursors are members as stored.

//go:embed bucket.lua
var bucketSource string

// BucketAdd adds member to the bucketed index.
func (w *Write) BucketAdd(index, member string) *Write { return w.keyOp("badd", index, 1).str(member) }

// BucketRem removes member from the bucketed index.
func (w *Write) BucketRem(index, member string) *Write { return w.keyOp("brem", index, 1).str(member) }

// BucketUnique is Unique on a bucketed unique index: it checks that value maps to owner or to
// nothing, and claims it for owner. The index holds one member per value: the value's key (the
// first 16 bytes of its SHA-256) and the owner, packed (PackUUID): 32 bytes and about 35 in a
// listpack bucket for a lead's e-mail, against about 150 in a hashtable-encoded hash. The value
// itself is not stored, so no bucket bound keeps it once its member is gone (an erased person's
// e-mail); two values with one key would count as one, which a 128-bit key makes negligible.
func (w *Write) BucketUnique(index, value, owner string) *Write {
	return w.bucketUnique(index, value, owner, "")
}

// BucketUniqueOrRead is UniqueOrRead on a bucketed unique index: a conflict carries the owner's
// record, read at recordPrefix+owner in the same call.
func (w *Write) BucketUniqueOrRead(index, value, owner, recordPrefix string) *Write {
	if hashTag(recordPrefix) != hashTag(index) {
		w.fail(fmt.Errorf("commit: records under %q are outside the hash tag of %q", recordPrefix, index))
	}
	return w.bucketUnique(index, value, owner, recordPrefix)
}

func (w *Write) bucketUnique(index, value, owner, recordPrefix string) *Write {
	h, o := uniqueKey(value), PackUUID(owner)
	w.keyOp("buniq", index, 4).str(h).str(o).str(recordPrefix).str(value)
	return w.keyOp("bclaim", index, 2).str(h).str(o)
}

// BucketExpectFree checks that no owner holds value in a bucketed unique index (a conflict is
// *UniqueConflictError naming the owner), claiming nothing.
func (w *Write) BucketExpectFree(index, value string) *Write {
	return w.keyOp("buniq", index, 4).str(uniqueKey(value)).str("").str("").str(value)
}

// BucketRelease removes value, whoever owns it, from a bucketed unique index.
func (w *Write) BucketRelease(index, value string) *Write {
	return w.keyOp("bunclaim", index, 1).str(uniqueKey(value))
}

// uniqueKey is what a bucketed unique index keeps of a value.
func uniqueKey(value string) string {
	sum := sha256.Sum256([]byte(value))
	return string(sum[:16])
}

// PackUUID is a canonical lower-case UUID as its 16 bytes, whose byte order is the text's order;
// anything else unchanged. UnpackUUID undoes it.
func PackUUID(id string) string {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return id
	}
	var b [16]byte
	src := id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:36]
	if strings.ToLower(src) != src {
		return id
	}
	if _, err := hex.Decode(b[:], []byte(src)); err != nil {
		return id
	}
	return string(b[:])
}

// UnpackUUID is the text of a packed UUID (16 bytes); anything else unchanged. An id that is not a
// UUID must not be 16 bytes long where it is packed.
func UnpackUUID(b string) string {
	if len(b) != 16 {
		return b
	}
	var out [36]byte
	hex.Encode(out[0:8], []byte(b[0:4]))
	out[8] = '-'
	hex.Encode(out[9:13], []byte(b[4:6]))
	out[13] = '-'
	hex.Encode(out[14:18], []byte(b[6:8]))
	out[18] = '-'
	hex.Encode(out[19:23], []byte(b[8:10]))
	out[23] = '-'
	hex.Encode(out[24:36], []byte(b[10:16]))
	return string(out[:])
}

//go:embed bucket_read.lua
var bucketReadSource string

var bucketReadScript = redis.NewScript(bucketSource + bucketReadSource)

// bucketMembers reads one page of a bucketed index's lexical range.
func bucketMembers(ctx context.Context, rdb redis.UniversalClient, r Range) (page.Page[string], error) {
	if r.ByScore {
		return page.Page[string]{}, fmt.Errorf("commit: %s is bucketed: it is read by member", r.Index)
	}
	lo, hi := r.Min, r.Max
	if lo == "" {
		lo = "-"
	}
	if hi == "" {
		hi = "+"
	}
	dir := ""
	if r.Desc {
		dir = "rev"
	}
	args := []any{"page", lo, hi, dir, r.Limit + 1}
	if r.After != "" {
		args = append(args, r.After)
	}
	members, err := bucketReadScript.RunRO(ctx, rdb, []string{r.Index}, args...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return page.Page[string]{}, fmt.Errorf("commit: page of %s: %w", r.Index, err)
	}
	if len(members) <= r.Limit {
		return page.Page[string]{Items: members}, nil
	}
	return page.Page[string]{Items: members[:r.Limit], Next: members[r.Limit-1]}, nil
}

// BucketCount is the number of members of a bucketed index, on c (a client, or a pipeline to run
// later): one script call that sums its buckets, O(members / 64).
func BucketCount(ctx context.Context, c redis.Cmdable, index string) *redis.Cmd {
	if _, queued := c.(redis.Pipeliner); queued {
		return bucketReadScript.EvalRO(ctx, c, []string{index}, "count")
	}
	return bucketReadScript.RunRO(ctx, c, []string{index}, "count")
}

// BucketOwners reads the owners of values in a bucketed unique index, "" for a value nobody owns:
// one round trip.
func BucketOwners(ctx context.Context, rdb redis.UniversalClient, index string, values ...string) ([]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+len(values))
	args = append(args, "owners")
	for _, v := range values {
		args = append(args, uniqueKey(v))
	}
	raw, err := bucketReadScript.RunRO(ctx, rdb, []string{index}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("commit: owners in %s: %w", index, err)
	}
	out := make([]string, len(values))
	for i, x := range raw {
		if s, ok := x.(string); ok {
			out[i] = UnpackUUID(s)
		}
	}
	return out, nil
}
