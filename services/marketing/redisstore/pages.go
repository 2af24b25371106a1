package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
)

// get reads one resource into msg; false when it does not exist. One round trip.
func get(ctx context.Context, rdb redis.UniversalClient, key string, msg proto.Message) (bool, error) {
	data, err := rdb.HGet(ctx, key, commit.FieldData).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := proto.Unmarshal(data, msg); err != nil {
		return false, fmt.Errorf("redisstore: decode %s: %w", key, err)
	}
	return true, nil
}

// lexBounds are the ends of a lexical range of a sorted set, in ZRANGE BYLEX syntax.
type lexBounds struct{ max, min string }

var everything = lexBounds{max: "+", min: "-"}

// page reads up to limit resources of a sorted-set index whose members all have one score, from
// the highest member down within bounds, after the member after, and returns the cursor of the
// next page ("" on the last). keyOf maps a member to its resource's key. Two round trips (the index
// range, then the resources in one pipeline), whatever the size of the collection.
func page[T proto.Message](ctx context.Context, rdb redis.UniversalClient, index string, bounds lexBounds, after string, limit int,
	keyOf func(member string) string, newMsg func() T) ([]T, string, error) {
	start := bounds.max
	if after != "" {
		start = "(" + after
	}
	ids, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: index, Start: start, Stop: bounds.min, ByLex: true, Rev: true, Count: int64(limit + 1),
	}).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[len(ids)-1]
	}
	if len(ids) == 0 {
		return nil, "", nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, keyOf(id), commit.FieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", err
	}
	out := make([]T, 0, len(ids))
	for i, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, "", err
		}
		msg := newMsg()
		if err := proto.Unmarshal(data, msg); err != nil {
			return nil, "", fmt.Errorf("redisstore: decode %s: %w", keyOf(ids[i]), err)
		}
		out = append(out, msg)
	}
	return out, next, nil
}

// indexEntry is one member of one sorted-set index.
type indexEntry struct{ key, member string }

// moveIndexes turns a resource's index entries from old to new: entries only in old are removed,
// entries only in new added (at score 0: indexes order their members lexically).
func moveIndexes(w *commit.Write, old, new []indexEntry) {
	for _, e := range old {
		if !slices.Contains(new, e) {
			w.ZRem(e.key, e.member)
		}
	}
	for _, e := range new {
		if !slices.Contains(old, e) {
			w.ZAdd(e.key, 0, e.member)
		}
	}
}
