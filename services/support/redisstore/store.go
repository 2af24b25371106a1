// Package redisstore keeps support's tickets on Redis. A ticket is a pkg/commit record
// under crm:{p<N>}:support:<tenant>:ticket:<id>; sorted sets with equal scores order ticket ids
// (UUIDv7, so time-ordered) for all tickets and per status, priority, assignee, customer, product
// and breached; a ticket's comments are a hash of protobufs beside a sorted set of their ids. The
// sweeps' schedules are sorted sets scored by due time, one per tenant (for a sweep of one tenant)
// and one per partition (keyspace.Partitioned, members "<tenant>:<ticket id>", for the background
// sweep of all). Counters for the statistics are one hash per tenant. Every write, with its indexes, schedules, counters and
// outbox events, is one atomic commit.
package redisstore

import (
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/services/support"
)

const service = "support"

var _ support.Store = (*Store)(nil)

// Store is the Redis implementation of support.Store.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space
}

// New returns a store.
func New(rdb redis.UniversalClient, keys *keyspace.Space) *Store {
	return &Store{rdb: rdb, keys: keys}
}

type scope struct{ keyspace.Scope }

func (s *Store) scope(tenant string) scope { return scope{s.keys.Scope(service, tenant)} }

func (k scope) ticket(id string) string       { return k.Key("ticket", id) }
func (k scope) comments(id string) string     { return k.Key("comments", id) }
func (k scope) commentIDs(id string) string   { return k.Key("comment-ids", id) }
func (k scope) stats() string                 { return k.Key("stats") }
func (k scope) policy(priority string) string { return k.Key("sla-policy", priority) }
func (k scope) settings() string              { return k.Key("settings") }
func (k scope) nps(id string) string          { return k.Key("nps", id) }

// staleAsDomain turns the commit's version conflict into the domain's.
func staleAsDomain(err error) error {
	if errors.Is(err, commit.ErrVersionMismatch) {
		return support.ErrStale
	}
	return err
}
