package redisstore

import (
	"context"
	"errors"
	"fmt"

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

// page reads up to limit resources of a sorted-set index of time-ordered ids, newest first, after
// the id after, and returns the cursor of the next page ("" on the last). Two round trips (the
// index range, then the resources in one pipeline), whatever the size of the collection.
func page[T proto.Message](ctx context.Context, rdb redis.UniversalClient, index, after string, limit int,
	keyOf func(id string) string, newMsg func() T) ([]T, string, error) {
	start := "+"
	if after != "" {
		start = "(" + after
	}
	ids, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: index, Start: start, Stop: "-", ByLex: true, Rev: true, Count: int64(limit + 1),
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

// moveIndexes updates index membership from the old resource's indexes to the new one's.
func moveIndexes(w *commit.Write, oldIdx, newIdx []string, id string) {
	for i := range newIdx {
		if oldIdx[i] != newIdx[i] {
			w.ZRem(oldIdx[i], id).ZAdd(newIdx[i], 0, id)
		}
	}
}
