// Package commit is the record layer: it owns how a resource is stored, both halves. A write puts
// a resource, its secondary indexes and its outbox event in one atomic Lua call: one round trip,
// all or nothing. Callers describe the write declaratively (checks, then effects); nobody writes
// Lua per resource. Reads get one record, many records, or one page of an index (read.go,
// page.go).
//
// A resource is stored as a hash {d: protobuf bytes, v: version}. Checks run first and abort the
// whole write when one fails, so a failed check leaves neither record, index nor event.
package commit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/apierr"
)

//go:embed commit.lua
var scriptSource string

var script = redis.NewScript(scriptSource)

// Resource hash fields.
const (
	FieldData    = "d"
	FieldVersion = "v"
)

// ErrVersionMismatch means the resource changed (or was created or deleted) since it was read.
// Unless a service says better, clients see it as ABORTED (HTTP 409): re-read and retry.
var ErrVersionMismatch = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
	"the resource changed since it was read (stale etag); read it again and retry")

// VersionError means the resource at Key was not at the version a write expected. It unwraps to
// ErrVersionMismatch, which is what clients see; Key tells a write that checks several versions
// which one moved.
type VersionError struct{ Key string }

func (e *VersionError) Error() string { return "commit: " + e.Key + " changed since it was read" }

// Unwrap gives the client-facing error.
func (e *VersionError) Unwrap() error { return ErrVersionMismatch }

// ErrAlreadyApplied means a Once marker exists: the write was done before.
var ErrAlreadyApplied = errors.New("commit: already applied")

// ErrAlreadyExists is what a unique conflict is to clients unless a service says better.
var ErrAlreadyExists = apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "a resource with this unique value already exists")

// InsufficientError means a Debit found less than it needed.
type InsufficientError struct {
	Key       string
	Available int64
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("commit: %s holds only %d", e.Key, e.Available)
}

// MissingError means a key that ExpectExists named does not exist.
type MissingError struct{ Key string }

func (e *MissingError) Error() string { return "commit: " + e.Key + " does not exist" }

// PresentError means a key that ExpectAbsent named exists.
type PresentError struct{ Key string }

func (e *PresentError) Error() string { return "commit: " + e.Key + " exists" }

// UniqueConflictError means a unique index already maps the value to another owner. It unwraps to
// ErrAlreadyExists, so it reaches clients as ALREADY_EXISTS with the owner's id.
type UniqueConflictError struct {
	Index string // the unique index's key
	Value string // the value that is taken
	Owner string // who has it
}

func (e *UniqueConflictError) Error() string {
	return fmt.Sprintf("commit: %q in %s belongs to %s", e.Value, e.Index, e.Owner)
}

// Unwrap gives the client-facing error; the index key and value stay out of it.
func (e *UniqueConflictError) Unwrap() error { return ErrAlreadyExists.With("existing_id", e.Owner) }

// Write is one atomic write under construction. All its keys must share one hash tag.
type Write struct {
	keys   []string
	keyIdx map[string]int
	args   []any
	ops    int
	err    error
}

// New starts a write.
func New() *Write { return &Write{keyIdx: map[string]int{}} }

func (w *Write) key(k string) string {
	if i, ok := w.keyIdx[k]; ok {
		return strconv.Itoa(i)
	}
	if len(w.keys) > 0 && hashTag(k) != hashTag(w.keys[0]) {
		w.fail(fmt.Errorf("commit: key %q is outside the hash tag of %q", k, w.keys[0]))
	}
	w.keys = append(w.keys, k)
	w.keyIdx[k] = len(w.keys)
	return strconv.Itoa(len(w.keys))
}

// fail keeps the first error of building the write, which Run returns.
func (w *Write) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *Write) op(code string, args ...any) *Write {
	w.ops++
	w.args = append(w.args, code, len(args))
	w.args = append(w.args, args...)
	return w
}

// ExpectVersion checks that the resource at key has the given version; "" means it must not exist.
func (w *Write) ExpectVersion(key, version string) *Write {
	return w.op("ver", w.key(key), version)
}

// Debit takes amount from a counter in a hash, and refuses (InsufficientError) when that would
// drive it below zero: concurrent debits can never overdraw it.
func (w *Write) Debit(key, field string, amount int64) *Write {
	w.op("covers", w.key(key), field, amount)
	return w.op("hincr", w.key(key), field, -amount)
}

// ExpectExists checks that key exists, for writes that reference another resource.
func (w *Write) ExpectExists(key string) *Write { return w.op("exists", w.key(key)) }

// ExpectAbsent checks that key does not exist, for writes that need a collection to be empty (an
// empty sorted set or hash does not exist in Redis).
func (w *Write) ExpectAbsent(key string) *Write { return w.op("absent", w.key(key)) }

// Unique checks that the hash index maps value to owner or to nothing, and claims it for owner.
func (w *Write) Unique(index, value, owner string) *Write {
	w.op("uniq", w.key(index), value, owner)
	return w.op("hset", w.key(index), value, owner)
}

// Once checks that marker does not exist and sets it (with a TTL in seconds, 0 for none), so a
// redelivered write changes nothing.
func (w *Write) Once(marker string, ttlSeconds int) *Write {
	w.op("once", w.key(marker))
	return w.op("mark", w.key(marker), ttlSeconds)
}

// Save stores msg as the resource at key, moving its version from prev ("" for a new resource) to
// version: the version check and the new data.
func (w *Write) Save(key string, msg proto.Message, prev, version string) *Write {
	data, err := proto.Marshal(msg)
	if err != nil {
		w.fail(fmt.Errorf("commit: encode %s: %w", key, err))
		return w
	}
	return w.ExpectVersion(key, prev).Put(key, data, version)
}

// Put stores the resource's data with its new version.
func (w *Write) Put(key string, data []byte, version string) *Write {
	return w.op("put", w.key(key), data, version)
}

// Delete removes a key.
func (w *Write) Delete(key string) *Write { return w.op("del", w.key(key)) }

// HSet sets a hash field.
func (w *Write) HSet(key, field, value string) *Write { return w.op("hset", w.key(key), field, value) }

// HDel removes a hash field.
func (w *Write) HDel(key, field string) *Write { return w.op("hdel", w.key(key), field) }

// ZAdd adds or moves member in a sorted set.
func (w *Write) ZAdd(key string, score float64, member string) *Write {
	return w.op("zadd", w.key(key), strconv.FormatFloat(score, 'f', -1, 64), member)
}

// ZRem removes member from a sorted set.
func (w *Write) ZRem(key, member string) *Write { return w.op("zrem", w.key(key), member) }

// HIncrBy adds delta to a counter in a hash.
func (w *Write) HIncrBy(key, field string, delta int64) *Write {
	return w.op("hincr", w.key(key), field, delta)
}

// Append adds an event to a stream (the outbox). Streams are trimmed by events.RunRetention, which
// never removes an entry a consumer group still needs; the write does not trim.
func (w *Write) Append(stream string, event []byte) *Write {
	return w.op("xadd", w.key(stream), event)
}

// Run executes the write in one round trip.
func (w *Write) Run(ctx context.Context, rdb redis.Scripter) error {
	if w.err != nil {
		return w.err
	}
	if w.ops == 0 {
		return nil
	}
	res, err := script.Run(ctx, rdb, w.keys, append([]any{w.ops}, w.args...)...).StringSlice()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	switch res[0] {
	case "ok":
		return nil
	case "version":
		return &VersionError{Key: res[1]}
	case "once":
		return ErrAlreadyApplied
	case "uniq":
		return &UniqueConflictError{Index: res[1], Value: res[2], Owner: res[3]}
	case "missing":
		return &MissingError{Key: res[1]}
	case "present":
		return &PresentError{Key: res[1]}
	case "insufficient":
		available, _ := strconv.ParseInt(res[2], 10, 64)
		return &InsufficientError{Key: res[1], Available: available}
	}
	return fmt.Errorf("commit: unexpected script reply %q", res)
}

// hashTag is the part of a key Redis Cluster hashes: the text between the first { and the next }.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}
