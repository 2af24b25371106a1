package commit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

//go:embed read.lua
var readFile string

// readSource is read.lua without its comment lines: a read on a pipeline sends it whole (EVAL).
var readSource = withoutComments(readFile)

var readScript = redis.NewScript(readSource)

func withoutComments(lua string) string {
	var b strings.Builder
	for line := range strings.Lines(lua) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Stored is the read of one resource, done or queued on a pipeline: Decode it once the pipeline
// ran. It lets a read that needs other keys too (counters, markers) stay one round trip.
type Stored struct {
	key string
	cmd *redis.Cmd
	i   int // which of cmd's records
}

// Read reads the resource at key through c: a client, or a pipeline to run later. A record is a
// string (see Put) or, in the old layout, a hash {d, v}: read.lua reads either, so the read is one
// command. On a pipeline the script goes as EVAL_RO (a queued EVALSHA_RO could not fall back if
// Redis had lost its script cache). Every read script of this package goes as a read-only call
// (EVALSHA_RO, EVAL_RO): Redis serves those while it holds writes (CLIENT PAUSE WRITE, as in a
// failover), where a plain EVALSHA of a script that only reads waited with the writes.
func Read(ctx context.Context, c redis.Cmdable, key string) Stored {
	return Stored{key: key, cmd: readRecords(ctx, c, []string{key})}
}

func readRecords(ctx context.Context, c redis.Cmdable, keys []string) *redis.Cmd {
	if _, queued := c.(redis.Pipeliner); queued {
		return readScript.EvalRO(ctx, c, keys)
	}
	return readScript.RunRO(ctx, c, keys)
}

// record is the stored record: its version and data; ok false when there is none.
func (s Stored) record() (version, data string, ok bool, err error) {
	if s.cmd == nil {
		return "", "", false, nil
	}
	all, err := s.cmd.Slice()
	if err != nil {
		return "", "", false, err
	}
	if s.i >= len(all) {
		return "", "", false, nil
	}
	raw, ok := all[s.i].(string)
	if !ok {
		return "", "", false, nil
	}
	version, data, err = unpack(raw)
	if err != nil {
		return "", "", false, fmt.Errorf("commit: %s: %w", s.key, err)
	}
	return version, data, true, nil
}

// Decode fills msg with the resource; false, leaving msg alone, when there is none.
func (s Stored) Decode(msg proto.Message) (bool, error) {
	_, data, ok, err := s.record()
	if err != nil || !ok {
		return false, err
	}
	if err := proto.Unmarshal([]byte(data), msg); err != nil {
		return false, fmt.Errorf("commit: decode %s: %w", s.key, err)
	}
	return true, nil
}

// Version is the resource's version, "" when there is none.
func (s Stored) Version() string {
	v, _, _, _ := s.record()
	return v
}

// pack is a record as stored: one byte the version's length, the version, then the data.
func pack(data []byte, version string) ([]byte, error) {
	if len(version) > 255 {
		return nil, fmt.Errorf("commit: a version of %d bytes (at most 255)", len(version))
	}
	out := make([]byte, 0, 1+len(version)+len(data))
	out = append(out, byte(len(version)))
	out = append(out, version...)
	return append(out, data...), nil
}

// unpack splits a stored record into its version and data.
func unpack(raw string) (version, data string, err error) {
	if raw == "" || 1+int(raw[0]) > len(raw) {
		return "", "", errors.New("not a record")
	}
	n := 1 + int(raw[0])
	return raw[1:n], raw[n:], nil
}

// Get reads the resource at key into msg and returns it, or notFound when there is none (a nil
// notFound gives the zero T and no error, for resources that may be absent). One round trip.
func Get[T proto.Message](ctx context.Context, c redis.Cmdable, key string, msg T, notFound error) (T, error) {
	var zero T
	found, err := Read(ctx, c, key).Decode(msg)
	if err != nil {
		return zero, err
	}
	if !found {
		return zero, notFound
	}
	return msg, nil
}

// GetMany reads the resources at keys, which must share one hash tag, in one round trip (one
// script call on one node, also on a cluster). A missing resource is the zero T (nil).
func GetMany[T proto.Message](ctx context.Context, rdb redis.UniversalClient, keys []string, newMsg func() T) ([]T, error) {
	out := make([]T, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	for _, k := range keys[1:] {
		if hashTag(k) != hashTag(keys[0]) {
			return nil, fmt.Errorf("commit: key %q is outside the hash tag of %q", k, keys[0])
		}
	}
	cmd := readRecords(ctx, rdb, keys)
	for i, k := range keys {
		msg := newMsg()
		found, err := (Stored{key: k, cmd: cmd, i: i}).Decode(msg)
		if err != nil {
			return nil, err
		}
		if found {
			out[i] = msg
		}
	}
	return out, nil
}
