package redisstore

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/services/sales"
)

var _ sales.MergeStore = (*Store)(nil)

// mergedCustomers maps merged customer ids to their survivors.
func (k keys) mergedCustomers() string { return k.Key("merged-customers") }

// MarkMerged implements sales.MergeStore.
func (s *Store) MarkMerged(ctx context.Context, tenant, merged, survivor string) error {
	return s.rdb.HSet(ctx, s.scope(tenant).mergedCustomers(), merged, survivor).Err()
}

// SurvivorOf implements sales.MergeStore.
func (s *Store) SurvivorOf(ctx context.Context, tenant, customer string) (string, error) {
	survivor, err := s.rdb.HGet(ctx, s.scope(tenant).mergedCustomers(), customer).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return survivor, err
}

// MoveContacts implements sales.MergeStore: one page of the merged customer's contact index, and
// one atomic write of those contacts and their index entries. The first contact moved becomes the
// survivor's entry in the customer-contacts hash when the survivor has none.
func (s *Store) MoveContacts(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	from := k.ofCustomer("contact", merged)
	members, err := commit.Members(ctx, s.rdb, commit.Range{Index: from, Limit: limit})
	if err != nil {
		return 0, err
	}
	if len(members.Items) == 0 {
		// All moved: the merged customer's entry goes (it named one of them, or a deleted one).
		return 0, s.rdb.HDel(ctx, k.customers(), merged).Err()
	}
	keys := k.resources("contact", members.Items)
	contacts, err := commit.GetMany(ctx, s.rdb, keys, func() *sales.Contact { return &sales.Contact{} })
	if err != nil {
		return 0, err
	}
	_, err = s.ContactOfCustomer(ctx, tenant, survivor)
	hasEntry := err == nil
	if err != nil && !errors.Is(err, sales.ErrContactNotFound) {
		return 0, err
	}
	w := commit.New()
	for i, c := range contacts {
		if c == nil || c.GetCustomerId() != merged {
			w.ZRem(from, members.Items[i]) // an entry left without its contact: dropped
			continue
		}
		next := proto.CloneOf(c)
		next.CustomerId, next.Etag = survivor, etag.Next(c.GetEtag())
		w.Save(keys[i], next, c.GetEtag(), next.GetEtag()).Move(k.contactMembers(c), k.contactMembers(next))
		if !hasEntry {
			w.HSet(k.customers(), survivor, c.GetId())
			hasEntry = true
		}
	}
	return len(members.Items), s.run(ctx, k, w)
}

// MoveOrders implements sales.MergeStore: one page of the merged customer's order index, and
// one atomic write of those orders and both customers' index entries.
func (s *Store) MoveOrders(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	from := k.index("order", "time", "customer_id", merged)
	members, err := commit.Members(ctx, s.rdb, commit.Range{Index: from, Limit: limit})
	if err != nil || len(members.Items) == 0 {
		return 0, err
	}
	ids := make([]string, len(members.Items))
	for i, m := range members.Items {
		ids[i] = k.resource("order", m[strings.LastIndexByte(m, 0)+1:])
	}
	orders, err := commit.GetMany(ctx, s.rdb, ids, func() *sales.Order { return &sales.Order{} })
	if err != nil {
		return 0, err
	}
	w := commit.New()
	to := k.index("order", "time", "customer_id", survivor)
	for i, m := range members.Items {
		w.ZRem(from, m)
		o := orders[i]
		if o == nil {
			continue // an index entry left without its order: dropped
		}
		next := proto.CloneOf(o)
		next.CustomerId, next.Etag = survivor, etag.Next(o.GetEtag())
		w.Save(ids[i], next, o.GetEtag(), next.GetEtag()).ZAdd(to, 0, m)
	}
	return len(members.Items), s.run(ctx, k, w)
}

// MoveOpportunities implements sales.MergeStore: one page of the merged customer's deal index, and
// one atomic write of those deals and their index entries.
func (s *Store) MoveOpportunities(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	from := k.ofCustomer("opportunity", merged)
	members, err := commit.Members(ctx, s.rdb, commit.Range{Index: from, Limit: limit})
	if err != nil || len(members.Items) == 0 {
		return 0, err
	}
	keys := k.resources("opportunity", members.Items)
	opps, err := commit.GetMany(ctx, s.rdb, keys, func() *sales.Opportunity { return &sales.Opportunity{} })
	if err != nil {
		return 0, err
	}
	w := commit.New()
	for i, o := range opps {
		if o == nil || o.GetCustomerId() != merged {
			w.ZRem(from, members.Items[i]) // an entry left without its deal: dropped
			continue
		}
		next := proto.CloneOf(o)
		next.CustomerId, next.Etag = survivor, etag.Next(o.GetEtag())
		w.Save(keys[i], next, o.GetEtag(), next.GetEtag()).Move(k.opportunityMembers(o), k.opportunityMembers(next))
	}
	return len(members.Items), s.run(ctx, k, w)
}
