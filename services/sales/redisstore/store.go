// Package redisstore keeps sales on Redis. A resource is a pkg/commit record under
// crm:{p<N>}:sales:<tenant>:<kind>:<id>; unique values (account domains, contact e-mails) are
// hashes of value to owner; indexes are sorted sets under ix:<kind>[:<field>:<value>], holding
// ids (UUIDv7, so newest first by lex order) or "<sort key>\x00<id>" for ordered ones (name,
// close date, amount, time). Every write, with its index updates, counters and outbox events, is
// one atomic commit.
package redisstore

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
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

// plain is the membership of id in the plain index kind[:field:value], none for an empty value.
func (k keys) plain(kind, id string, fieldValues ...string) []commit.Entry {
	out := []commit.Entry{{Index: k.index(kind), Member: id}}
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if fieldValues[i+1] != "" {
			out = append(out, commit.Entry{Index: k.index(kind, fieldValues[i], fieldValues[i+1]), Member: id})
		}
	}
	return out
}

// sorted is the membership of id in an ordered index under sort key.
func (k keys) sorted(id, sortKey, kind string, name ...string) commit.Entry {
	return commit.Entry{Index: k.index(kind, name...), Member: sortKey + "\x00" + id}
}

// run appends the events and executes w, turning commit's errors into the domain's.
func (s *Store) run(ctx context.Context, k keys, w *commit.Write, events ...[]byte) error {
	for _, e := range events {
		w.Append(k.Stream(), e)
	}
	return k.writeErr(w.Run(ctx, s.rdb))
}

// writeErr is a write's error as the sales package names it.
func (k keys) writeErr(err error) error {
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

// ReadMany implements sales.Store: one pipeline to the tenant's node.
func (s *Store) ReadMany(ctx context.Context, tenant, kind string, ids []string, msgs []proto.Message) ([]bool, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	reads := make([]commit.Stored, len(ids))
	for i, id := range ids {
		reads[i] = commit.Read(ctx, pipe, k.resource(kind, id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	found := make([]bool, len(ids))
	for i, r := range reads {
		var err error
		if found[i], err = r.Decode(msgs[i]); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// list reads one page of resources of kind through an index: two round trips, whatever the size
// of the collection. Ordered index members end in "\x00<id>". A lookup by e-mail reads the one
// record the unique index names; a search or a pair checks each record (sales.Index.Keeps) and
// examines a bounded part of the index per page.
func list[T interface {
	proto.Message
	GetId() string
}](ctx context.Context, s *Store, tenant, kind string, q sales.Query, newMsg func() T) (page.Page[T], error) {
	k := s.scope(tenant)
	keyOf := func(m string) string { return k.resource(kind, m[strings.LastIndexByte(m, 0)+1:]) }
	if q.Index.Email != "" {
		return byEmail(ctx, s, k, kind, q, newMsg)
	}
	r := commit.Range{Index: k.index(kind, q.Index.Name...), Min: q.Index.Min, Max: q.Index.Max, Desc: q.Index.Desc, After: q.After, Limit: q.Limit}
	if q.Index.Search == "" && len(q.Index.Also) == 0 {
		return commit.List(ctx, s.rdb, r, keyOf, newMsg)
	}
	return commit.ListWhere(ctx, s.rdb, r, keyOf, newMsg, func(m string, msg T) bool { return q.Index.Keeps(m, msg) }, searchBudget*q.Limit)
}

// searchBudget is how many index members one search page examines at most per record it returns.
const searchBudget = 5

// byEmail is the page of the one contact with the e-mail, when it has the pair's other field.
func byEmail[T interface {
	proto.Message
	GetId() string
}](ctx context.Context, s *Store, k keys, kind string, q sales.Query, newMsg func() T) (page.Page[T], error) {
	id, err := s.rdb.HGet(ctx, k.emails(), q.Index.Email).Result()
	if errors.Is(err, redis.Nil) || q.After != "" {
		return page.Page[T]{}, nil
	}
	if err != nil {
		return page.Page[T]{}, err
	}
	msg, err := commit.Get(ctx, s.rdb, k.resource(kind, id), newMsg(), nil)
	if err != nil || !msg.ProtoReflect().IsValid() || !q.Index.Keeps(id, msg) {
		return page.Page[T]{}, err
	}
	return page.Page[T]{Items: []T{msg}}, nil
}
