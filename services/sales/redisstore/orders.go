package redisstore

import (
	"context"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/services/sales"
)

// putOrder adds a new order and its time indexes (all, and the customer's) to w.
func (k keys) putOrder(w *commit.Write, o *sales.Order) {
	w.Save(k.resource("order", o.GetId()), o, "", o.GetEtag())
	at := sales.TimeKey(o.GetCreateTime().AsTime())
	w.Move(nil, []commit.Entry{
		k.sorted(o.GetId(), at, "order", "time"),
		k.sorted(o.GetId(), at, "order", "time", "customer_id", o.GetCustomerId()),
	})
}

// CreateOrder implements sales.Store.
func (s *Store) CreateOrder(ctx context.Context, tenant string, o *sales.Order, value *sales.ValueWrite, events ...[]byte) error {
	k, w := s.scope(tenant), commit.New()
	if o.GetAccountId() != "" {
		w.ExpectExists(k.resource("account", o.GetAccountId()))
	}
	k.putOrder(w, o)
	k.putValue(w, value)
	return s.run(ctx, k, w, events...)
}

// GetOrder implements sales.Store.
func (s *Store) GetOrder(ctx context.Context, tenant, id string) (*sales.Order, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("order", id), &sales.Order{}, sales.ErrOrderNotFound)
}

// ListOrders implements sales.Store.
func (s *Store) ListOrders(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Order], error) {
	return list(ctx, s, tenant, "order", q, func() *sales.Order { return &sales.Order{} })
}
