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

// getMany reads resources in one pipeline; a missing one is the zero T (nil).
func getMany[T proto.Message](ctx context.Context, rdb redis.UniversalClient, keys []string, newMsg func() T) ([]T, error) {
	out := make([]T, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGet(ctx, k, commit.FieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		msg := newMsg()
		if err := proto.Unmarshal(data, msg); err != nil {
			return nil, fmt.Errorf("redisstore: decode %s: %w", keys[i], err)
		}
		out[i] = msg
	}
	return out, nil
}

// lexRange is one page of a sorted set ordered by member (equal scores): newest first for
// time-ordered ids (rev), or ascending from a prefix. It returns the members and the cursor of the
// next page ("" on the last).
type lexRange struct {
	index  string
	after  string // the last member of the previous page
	limit  int
	rev    bool
	prefix string // ascending only: members starting with it
}

func (r lexRange) read(ctx context.Context, rdb redis.UniversalClient) ([]string, string, error) {
	args := redis.ZRangeArgs{Key: r.index, ByLex: true, Rev: r.rev, Count: int64(r.limit + 1)}
	switch {
	case r.rev:
		args.Start, args.Stop = "+", "-"
		if r.after != "" {
			args.Start = "(" + r.after
		}
	default:
		args.Start, args.Stop = "["+r.prefix, "["+r.prefix+"\xff"
		if r.after != "" {
			args.Start = "(" + r.after
		}
	}
	members, err := rdb.ZRangeArgs(ctx, args).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(members) > r.limit {
		members = members[:r.limit]
		next = members[len(members)-1]
	}
	return members, next, nil
}

// moveIndexes updates index membership from the old resource's indexes to the new one's.
func moveIndexes(w *commit.Write, oldIdx, newIdx []string, id string) {
	for i := range newIdx {
		if oldIdx[i] != newIdx[i] {
			w.ZRem(oldIdx[i], id).ZAdd(newIdx[i], 0, id)
		}
	}
}

// present drops the nils of a read of listed ids (deleted between the two reads).
func present[T proto.Message](all []T) []T {
	out := all[:0]
	for _, m := range all {
		if !isNil(m) {
			out = append(out, m)
		}
	}
	return out
}

func isNil(m proto.Message) bool { return m == nil || !m.ProtoReflect().IsValid() }
