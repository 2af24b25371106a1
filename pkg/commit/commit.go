// Package commit is the record layer: it owns how a resource is stored, both halves. A write puts
// a resource, its secondary indexes and its outbox event in one atomic Lua call: one round trip,
// all or nothing. Callers describe the write declaratively (checks, then effects); nobody writes
// Lua per resource. Reads get one record, many records, or one page of an index (read.go,
// page.go).
//
// A resource is stored as a string: one byte the version's length, the version, the protobuf
// bytes (see Put; the old layout, a hash {d: protobuf bytes, v: version}, is still read and
// checked). Checks run first and abort the whole write when one fails, so a failed check leaves
// neither record, index nor event.
package commit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/keyspace"
)

var (
	//go:embed commit.lua
	commitSource string
	//go:embed write.lua
	writeSource string
	//go:embed batch.lua
	batchSource string
)

// scriptSource is the write script: the bucketed indexes' functions (bucket.lua), what one write
// does (commit.lua), then the call of one write.
var scriptSource = bucketSource + commitSource + writeSource

var script = redis.NewScript(scriptSource)

// batchScript runs many writes in one call (RunBatch).
var batchScript = redis.NewScript(bucketSource + commitSource + batchSource)

// Fields of a record kept as a hash (the old layout, or a record sharing its hash with other
// fields).
const (
	FieldData    = "d"
	FieldVersion = "v"
)

// ErrVersionMismatch means the resource changed (or was created or deleted) since it was read.
// Unless a service says better, clients see it as ABORTED (HTTP 409): re-read and retry.
var ErrVersionMismatch = apierr.New(apierr.Aborted, apierr.ReasonEtagMismatch,
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

// ErrNotInitialized means the partition's marker is gone: Redis lost its data while this process
// served it (a restart without persistence, a flush). Writes stay refused until an operator
// re-initializes it with `crm admin redis init`.
var ErrNotInitialized = apierr.New(apierr.Unavailable, "STORE_NOT_INITIALIZED",
	"the data store lost its data and is not initialized; an operator must re-initialize it")

// MissingError means a key that ExpectExists named does not exist.
type MissingError struct{ Key string }

func (e *MissingError) Error() string { return "commit: " + e.Key + " does not exist" }

// PresentError means a key that ExpectAbsent named exists.
type PresentError struct{ Key string }

func (e *PresentError) Error() string { return "commit: " + e.Key + " exists" }

// FieldSetError means a hash field that ExpectUnset named is set, to Value.
type FieldSetError struct{ Key, Field, Value string }

func (e *FieldSetError) Error() string {
	return fmt.Sprintf("commit: %s has %s = %q", e.Key, e.Field, e.Value)
}

// UniqueConflictError means a unique index already maps the value to another owner. It unwraps to
// ErrAlreadyExists, so it reaches clients as ALREADY_EXISTS with the owner's id.
type UniqueConflictError struct {
	Index string // the unique index's key
	Value string // the value that is taken
	Owner string // who has it
	// OwnerRecord is the owner's record as stored, read in the same atomic call when the write
	// asked for it (UniqueOrRead); "" otherwise or when the owner has none. DecodeOwner reads it.
	OwnerRecord string
}

// DecodeOwner fills msg with the owner's record that came with the conflict (UniqueOrRead) and
// returns its version; found is false, leaving msg alone, when none came.
func (e *UniqueConflictError) DecodeOwner(msg proto.Message) (version string, found bool, err error) {
	if e.OwnerRecord == "" {
		return "", false, nil
	}
	version, data, err := unpack(e.OwnerRecord)
	if err == nil {
		err = proto.Unmarshal([]byte(data), msg)
	}
	if err != nil {
		return "", false, fmt.Errorf("commit: decode the record of %s: %w", e.Owner, err)
	}
	return version, true, nil
}

func (e *UniqueConflictError) Error() string {
	return fmt.Sprintf("commit: %q in %s belongs to %s", e.Value, e.Index, e.Owner)
}

// Unwrap gives the client-facing error; the index key and value stay out of it.
func (e *UniqueConflictError) Unwrap() error { return ErrAlreadyExists.With("existing_id", e.Owner) }

// Write is one atomic write under construction. All its keys must share one hash tag.
//
// Its operations go to the script as arguments: the partition marker flag, the operation count,
// then per operation its code, argument count and arguments (key arguments as indexes into KEYS).
// One argument per token costs Redis less than a packed program the script would have to cut up
// in Lua (measured: about 20 µs more per CaptureLead-sized write); building them costs crm little
// with the argument slices recycled, key indexes as small integers and constant codes, which Go
// boxes without allocating.
type Write struct {
	keys []string
	args []any
	ops  int
	err  error
	ran  bool
}

// argSlices recycles the writes' argument slices, done with once Run returns.
var argSlices = sync.Pool{New: func() any { s := make([]any, 0, 64); return &s }}

// New starts a write.
func New() *Write {
	return &Write{args: append((*argSlices.Get().(*[]any))[:0], "", 0)} // marker flag, op count: set by Run
}

// key is the index of k in KEYS, adding it on first use. A write names a few keys, so a scan beats
// a map.
func (w *Write) key(k string) int {
	for i, have := range w.keys {
		if have == k {
			return i + 1
		}
	}
	if len(w.keys) > 0 && hashTag(k) != hashTag(w.keys[0]) {
		w.fail(fmt.Errorf("commit: key %q is outside the hash tag of %q", k, w.keys[0]))
	}
	w.keys = append(w.keys, k)
	return len(w.keys)
}

// fail keeps the first error of building the write, which Run returns.
func (w *Write) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// op starts an operation with argc arguments, which follow.
func (w *Write) op(code string, argc int) *Write {
	w.ops++
	w.args = append(w.args, code, argc)
	return w
}

func (w *Write) str(v string) *Write {
	w.args = append(w.args, v)
	return w
}

func (w *Write) bytes(v []byte) *Write {
	w.args = append(w.args, v)
	return w
}

func (w *Write) int(v int64) *Write {
	w.args = append(w.args, v)
	return w
}

// keyOp starts an operation on key with argc more arguments.
func (w *Write) keyOp(code, key string, argc int) *Write {
	i := w.key(key)
	w.op(code, argc+1)
	w.args = append(w.args, i)
	return w
}

// ExpectVersion checks that the resource at key has the given version; "" means it must not exist.
func (w *Write) ExpectVersion(key, version string) *Write {
	return w.keyOp("ver", key, 1).str(version)
}

// Debit takes amount from a counter in a hash, and refuses (InsufficientError) when that would
// drive it below zero: concurrent debits can never overdraw it.
func (w *Write) Debit(key, field string, amount int64) *Write {
	w.keyOp("covers", key, 2).str(field).int(amount)
	return w.keyOp("hincr", key, 2).str(field).int(-amount)
}

// ExpectExists checks that key exists, for writes that reference another resource.
func (w *Write) ExpectExists(key string) *Write { return w.keyOp("exists", key, 0) }

// ExpectAbsent checks that key does not exist, for writes that need a collection to be empty (an
// empty sorted set or hash does not exist in Redis).
func (w *Write) ExpectAbsent(key string) *Write { return w.keyOp("absent", key, 0) }

// ExpectUnset checks that the hash at key has no field (a record another replaced names its
// replacement in a field, so writes about the old one are refused with the new one's name).
func (w *Write) ExpectUnset(key, field string) *Write { return w.keyOp("unset", key, 1).str(field) }

// Unique checks that the hash index maps value to owner or to nothing, and claims it for owner.
func (w *Write) Unique(index, value, owner string) *Write {
	w.keyOp("uniq", index, 2).str(value).str(owner)
	return w.keyOp("hset", index, 2).str(value).str(owner)
}

// UniqueOrRead is Unique that, when the value belongs to another owner, also reads that owner's
// record, at recordPrefix+owner, in the same atomic call (UniqueConflictError.DecodeOwner): a write
// that falls back to changing the owner's record (a capture of a known e-mail) needs no read of its
// own, and sees the owner as it was when its claim failed. The record must share the write's hash
// tag.
func (w *Write) UniqueOrRead(index, value, owner, recordPrefix string) *Write {
	if hashTag(recordPrefix) != hashTag(index) {
		w.fail(fmt.Errorf("commit: records under %q are outside the hash tag of %q", recordPrefix, index))
	}
	w.keyOp("uniq", index, 3).str(value).str(owner).str(recordPrefix)
	return w.keyOp("hset", index, 2).str(value).str(owner)
}

// Once checks that marker does not exist and sets it (with a TTL in seconds, 0 for none), so a
// redelivered write changes nothing.
func (w *Write) Once(marker string, ttlSeconds int) *Write {
	w.keyOp("once", marker, 0)
	return w.keyOp("mark", marker, 1).int(int64(ttlSeconds))
}

// SetFor sets key to value for ttl (rounded up to a millisecond): a short-lived value, such as a
// rotated secret that still signs during its overlap, written with the change that makes it.
func (w *Write) SetFor(key, value string, ttl time.Duration) *Write {
	return w.keyOp("setpx", key, 2).str(value).int(max(1, (ttl + time.Millisecond - 1).Milliseconds()))
}

// Save stores msg as the resource at key, moving its version from prev ("" for a new resource) to
// version: the version check and the new data.
func (w *Write) Save(key string, msg proto.Message, prev, version string) *Write {
	rec := w.encode(key, msg, version)
	if rec == nil {
		return w
	}
	return w.ExpectVersion(key, prev).keyOp("put", key, 1).bytes(rec)
}

// Create stores msg as a new resource at key, at version: the write is refused with a
// VersionError, as Save from "" is, when anything exists at key. It is for a key named by an id
// this request made (a UUIDv7): the script checks every Create of a write with one EXISTS, and
// puts the record without looking at what is there, where Save reads the key and its type first.
func (w *Write) Create(key string, msg proto.Message, version string) *Write {
	rec := w.encode(key, msg, version)
	if rec == nil {
		return w
	}
	return w.keyOp("new", key, 1).bytes(rec)
}

// encode is msg as a record at version (see Put), nil when it cannot be (the write then fails).
func (w *Write) encode(key string, msg proto.Message, version string) []byte {
	if len(version) > 255 {
		w.fail(fmt.Errorf("commit: %s: a version of %d bytes (at most 255)", key, len(version)))
		return nil
	}
	head := make([]byte, 1, 1+len(version)+proto.Size(msg))
	head[0] = byte(len(version))
	rec, err := proto.MarshalOptions{}.MarshalAppend(append(head, version...), msg)
	if err != nil {
		w.fail(fmt.Errorf("commit: encode %s: %w", key, err))
		return nil
	}
	return rec
}

// Put stores the resource's data with its new version. A record is one string: a byte the
// version's length, the version, the data (a hash {d, v} per record cost about 160 bytes more: its
// data is longer than hash-max-listpack-value, so Redis keeps it as a hashtable). An old-layout
// hash record becomes a string on its next write; a record that shares its hash with other fields
// stays a hash (see commit.lua).
func (w *Write) Put(key string, data []byte, version string) *Write {
	rec, err := pack(data, version)
	if err != nil {
		w.fail(fmt.Errorf("commit: %s: %w", key, err))
		return w
	}
	return w.keyOp("put", key, 1).bytes(rec)
}

// Delete removes a key.
func (w *Write) Delete(key string) *Write { return w.keyOp("del", key, 0) }

// HSet sets a hash field.
func (w *Write) HSet(key, field, value string) *Write {
	return w.keyOp("hset", key, 2).str(field).str(value)
}

// HDel removes a hash field.
func (w *Write) HDel(key, field string) *Write { return w.keyOp("hdel", key, 1).str(field) }

// ZAdd adds or moves member in a sorted set.
func (w *Write) ZAdd(key string, score float64, member string) *Write {
	w.keyOp("zadd", key, 2)
	w.args = append(w.args, score) // go-redis writes it as strconv.FormatFloat(score, 'f', -1, 64)
	return w.str(member)
}

// ZRem removes member from a sorted set.
func (w *Write) ZRem(key, member string) *Write { return w.keyOp("zrem", key, 1).str(member) }

// HIncrBy adds delta to a counter in a hash.
func (w *Write) HIncrBy(key, field string, delta int64) *Write {
	return w.keyOp("hincr", key, 2).str(field).int(delta)
}

// Append adds an event to a stream (the outbox). Streams are trimmed by events.RunRetention, which
// never removes an entry a consumer group still needs; the write does not trim.
func (w *Write) Append(stream string, event []byte) *Write {
	return w.keyOp("xadd", stream, 1).bytes(event)
}

// Publish announces message on a pub/sub channel in the same script, after the write's checks:
// listeners hear of the change exactly when it is made (a refused write publishes nothing). A
// channel is not a key: it has no hash tag to share.
func (w *Write) Publish(channel, message string) *Write {
	return w.op("pub", 2).str(channel).str(message)
}

// Run executes the write in one round trip.
func (w *Write) Run(ctx context.Context, rdb redis.Scripter) error {
	if w.err != nil {
		return w.err
	}
	if w.ops == 0 {
		return nil
	}
	keys, err := w.prepare()
	if err != nil {
		return err
	}
	var res []string
	if p, direct := rdb.(processor); direct && !isPipeline(rdb) {
		cmd := w.evalSha(ctx, p, keys)
		res, err = cmd.StringSlice()
		recycle(cmd.Args())
		w.recycle()
	} else {
		res, err = script.Run(ctx, rdb, keys, w.args...).StringSlice()
		if !isPipeline(rdb) {
			w.recycle()
		}
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return result(res)
}

// prepare marks the write as run and gives its keys; the partition's marker is checked first,
// inside the script, so it adds no round trip.
func (w *Write) prepare() ([]string, error) {
	if w.ran {
		return nil, errors.New("commit: a write runs once")
	}
	w.ran = true
	keys := w.keys
	w.args[0], w.args[1] = "", w.ops
	if len(w.keys) == 0 { // only announcements
		return nil, nil
	}
	if tag := hashTag(w.keys[0]); keyspace.IsPartitionTag(tag) {
		keys, w.args[0] = append(w.keys[:len(w.keys):len(w.keys)], keyspace.MarkerKey(tag)), "marked"
	}
	return keys, nil
}

// recycle gives the argument slice back once the command is written out and its reply read.
func (w *Write) recycle() {
	recycle(w.args)
	w.args = nil
}

func recycle(args []any) {
	clear(args)
	args = args[:0]
	argSlices.Put(&args)
}

// processor runs a command it is given (a client; a pipeline only queues it).
type processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

func isPipeline(rdb redis.Scripter) bool {
	_, queued := rdb.(redis.Pipeliner)
	return queued
}

// evalSha runs the write script by its hash, as Script.Run does (and with the script itself when
// Redis lost its script cache), with the command's arguments in a recycled slice: go-redis's
// EvalSha would copy keys and arguments into a new one, about 2 KiB per write.
func (w *Write) evalSha(ctx context.Context, p processor, keys []string) *redis.Cmd {
	args := append((*argSlices.Get().(*[]any))[:0], "evalsha", script.Hash(), len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, w.args...)
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	if err := p.Process(ctx, cmd); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		args[0], args[1] = "eval", scriptSource
		cmd = redis.NewCmd(ctx, args...)
		cmd.SetFirstKeyPos(3)
		_ = p.Process(ctx, cmd)
	}
	return cmd
}

// isReply reports whether err is an error reply of Redis for one command (the script failed),
// rather than a failure of the connection.
func isReply(err error) bool {
	_, ok := errors.AsType[redis.Error](err)
	return ok
}

// result is the error a script reply means.
func result(res []string) error {
	switch res[0] {
	case "ok":
		return nil
	case "uninitialized":
		return ErrNotInitialized
	case "version":
		return &VersionError{Key: res[1]}
	case "once":
		return ErrAlreadyApplied
	case "uniq":
		conflict := &UniqueConflictError{Index: res[1], Value: res[2], Owner: res[3]}
		if len(res) > 4 {
			conflict.OwnerRecord = res[4]
		}
		return conflict
	case "missing":
		return &MissingError{Key: res[1]}
	case "present":
		return &PresentError{Key: res[1]}
	case "set":
		return &FieldSetError{Key: res[1], Field: res[2], Value: res[3]}
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
