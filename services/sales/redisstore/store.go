// Package redisstore keeps sales on Redis. A resource is a hash {d: protobuf, v: version} under
// crm:{p<N>}:sales:<tenant>:<kind>:<id>; unique values (account domains, contact e-mails) are
// hashes of value to owner; indexes are sorted sets under ix:<kind>[:<field>:<value>], holding
// ids (UUIDv7, so newest first by lex order) or "<sort key>\x00<id>" for ordered ones (name,
// close date, amount, time). Every write, with its index updates, counters and outbox events, is
// one atomic commit.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/services/sales"
)

const service = "sales"

var _ sales.Store = (*Store)(nil)

// Store is the Redis implementation of sales.Store.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space
}

// New returns a store.
func New(rdb redis.UniversalClient, keys *keyspace.Space) *Store { return &Store{rdb: rdb, keys: keys} }

// keys builds one tenant's sales keys.
type keys struct{ keyspace.Scope }

func (s *Store) scope(tenant string) keys { return keys{s.keys.Scope(service, tenant)} }

func (k keys) resource(kind, id string) string { return k.Key(kind, id) }

// index is the sorted set of an index of kind.
func (k keys) index(kind string, name ...string) string {
	return k.Key(append([]string{"ix", kind}, name...)...)
}

// member is one entry of an index.
type member struct{ key, value string }

// plain is the membership of id in the plain index kind[:field:value], none for an empty value.
func (k keys) plain(kind, id string, fieldValues ...string) []member {
	out := []member{{k.index(kind), id}}
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if fieldValues[i+1] != "" {
			out = append(out, member{k.index(kind, fieldValues[i], fieldValues[i+1]), id})
		}
	}
	return out
}

// sorted is the membership of id in an ordered index under sort key.
func (k keys) sorted(id, sortKey, kind string, name ...string) member {
	return member{k.index(kind, name...), sortKey + "\x00" + id}
}

// moveMembers updates index membership from old to new.
func moveMembers(w *commit.Write, old, new []member) {
	for _, m := range old {
		if !hasMember(new, m) {
			w.ZRem(m.key, m.value)
		}
	}
	for _, m := range new {
		if !hasMember(old, m) {
			w.ZAdd(m.key, 0, m.value)
		}
	}
}

func hasMember(list []member, m member) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}

// putResource adds the version check and the new data of a resource to w; prevEtag "" means it
// must not exist yet.
func putResource(w *commit.Write, key, prevEtag string, msg proto.Message, etag string) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	w.ExpectVersion(key, prevEtag).Put(key, data, etag)
	return nil
}

// run appends the events and executes w, turning commit's errors into the domain's.
func (s *Store) run(ctx context.Context, k keys, w *commit.Write, events ...[]byte) error {
	for _, e := range events {
		w.Append(k.Stream(), e)
	}
	err := w.Run(ctx, s.rdb)
	if err == nil {
		return nil
	}
	if errors.Is(err, commit.ErrVersionMismatch) {
		return sales.ErrStale
	}
	if errors.Is(err, commit.ErrAlreadyApplied) {
		return sales.ErrLeadAlreadyConverted
	}
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); ok {
		if conflict.Index == k.domains() {
			return sales.ErrAccountDomainExists.With("existing_id", conflict.Owner)
		}
		return sales.ErrContactEmailExists.With("existing_id", conflict.Owner)
	}
	if missing, ok := errors.AsType[*commit.MissingError](err); ok {
		switch {
		case strings.HasPrefix(missing.Key, k.resource("account", "")):
			return sales.ErrUnknownAccount
		case strings.HasPrefix(missing.Key, k.resource("contact", "")):
			return sales.ErrUnknownContact
		}
		return sales.ErrUnknownLink
	}
	if present, ok := errors.AsType[*commit.PresentError](err); ok {
		if strings.HasPrefix(present.Key, k.index("contact", "account_id")) {
			return sales.ErrAccountHasContacts
		}
		return sales.ErrStageInUse
	}
	return err
}

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

// getOr reads a resource of kind, or returns notFound.
func getOr[T proto.Message](ctx context.Context, s *Store, tenant, kind, id string, msg T, notFound error) (T, error) {
	found, err := get(ctx, s.rdb, s.scope(tenant).resource(kind, id), msg)
	if err != nil {
		var zero T
		return zero, err
	}
	if !found {
		var zero T
		return zero, notFound
	}
	return msg, nil
}

// page reads up to limit resources of kind through an index, after the cursor after, and
// returns the cursor of the next page ("" on the last). Two round trips (the index range, then
// the resources in one pipeline), whatever the size of the collection.
func page[T proto.Message](ctx context.Context, s *Store, tenant, kind string, q sales.Query, newMsg func() T) ([]T, string, error) {
	k := s.scope(tenant)
	lo, hi := q.Index.Min, q.Index.Max
	if lo == "" {
		lo = "-"
	}
	if hi == "" {
		hi = "+"
	}
	if q.After != "" && q.Index.Desc {
		hi = "(" + q.After
	} else if q.After != "" {
		lo = "(" + q.After
	}
	args := redis.ZRangeArgs{Key: k.index(kind, q.Index.Name...), Start: lo, Stop: hi, ByLex: true, Count: int64(q.Limit + 1)}
	if q.Index.Desc {
		args.Start, args.Stop, args.Rev = hi, lo, true
	}
	members, err := s.rdb.ZRangeArgs(ctx, args).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(members) > q.Limit {
		members = members[:q.Limit]
		next = members[len(members)-1]
	}
	if len(members) == 0 {
		return nil, "", nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(members))
	for i, m := range members {
		cmds[i] = pipe.HGet(ctx, k.resource(kind, m[strings.LastIndexByte(m, 0)+1:]), commit.FieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", err
	}
	out := make([]T, 0, len(members))
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
			return nil, "", fmt.Errorf("redisstore: decode %s %s: %w", kind, members[i], err)
		}
		out = append(out, msg)
	}
	return out, next, nil
}
