// Package redisstore keeps the product service's data on Redis. Each resource is a pkg/commit
// record under crm:{p<N>}:product:<tenant>:<kind>:<id>; sorted sets with equal scores order
// time-ordered ids for the list indexes; hashes hold the unique SKUs, the counters and the grants.
// Every write, with its index updates and outbox event, is one atomic commit.
package redisstore

import (
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/services/product"
)

const service = "product"

var (
	_ product.CatalogStore      = (*Store)(nil)
	_ product.SubscriptionStore = (*Store)(nil)
)

// Store is the Redis implementation of the product service's stores.
type Store struct {
	rdb  redis.UniversalClient
	keys *keyspace.Space
}

// New returns a store.
func New(rdb redis.UniversalClient, keys *keyspace.Space) *Store {
	return &Store{rdb: rdb, keys: keys}
}

// Partitions implements product.SubscriptionStore.
func (s *Store) Partitions() int { return s.keys.Partitions() }

// tenantKeys builds one tenant's keys.
type tenantKeys struct {
	keyspace.Scope
	renewalsDue string // the partition's renewal schedule, shared by its tenants
	rescoreDue  string // the partition's adoption rescoring schedule, shared by its tenants
}

func (s *Store) scope(tenant string) tenantKeys {
	return tenantKeys{
		Scope:       s.keys.Scope(service, tenant),
		renewalsDue: s.renewalsDue(s.keys.Partition(tenant)),
		rescoreDue:  s.rescoreDue(s.keys.Partition(tenant)),
	}
}

func (s *Store) rescoreDue(partition int) string {
	return s.keys.Partitioned(service, partition, "adoption-rescore-due")
}

func (s *Store) renewalsDue(partition int) string {
	return s.keys.Partitioned(service, partition, "renewals-due")
}
