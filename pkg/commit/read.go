package commit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

// Stored is the read of one resource, done or queued on a pipeline: Decode it once the pipeline
// ran. It lets a read that needs other keys too (counters, markers) stay one round trip.
type Stored struct {
	key string
	cmd *redis.SliceCmd
}

// Read reads the resource at key through c: a client, or a pipeline to run later.
func Read(ctx context.Context, c redis.Cmdable, key string) Stored {
	return Stored{key: key, cmd: c.HMGet(ctx, key, FieldData, FieldVersion)}
}

// Decode fills msg with the resource; false, leaving msg alone, when there is none.
func (s Stored) Decode(msg proto.Message) (bool, error) {
	fields, err := s.cmd.Result()
	if err != nil {
		return false, err
	}
	data, ok := fields[0].(string)
	if !ok {
		return false, nil
	}
	if err := proto.Unmarshal([]byte(data), msg); err != nil {
		return false, fmt.Errorf("commit: decode %s: %w", s.key, err)
	}
	return true, nil
}

// Version is the resource's version, "" when there is none.
func (s Stored) Version() string {
	fields := s.cmd.Val()
	if len(fields) < 2 {
		return ""
	}
	v, _ := fields[1].(string)
	return v
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
// pipeline to one node, also on a cluster). A missing resource is the zero T (nil).
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
	pipe := rdb.Pipeline()
	reads := make([]Stored, len(keys))
	for i, k := range keys {
		reads[i] = Read(ctx, pipe, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for i, r := range reads {
		msg := newMsg()
		found, err := r.Decode(msg)
		if err != nil {
			return nil, err
		}
		if found {
			out[i] = msg
		}
	}
	return out, nil
}
