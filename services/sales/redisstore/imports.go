package redisstore

import (
	"context"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/sales"
)

// AccountIDsByDomain implements sales.Store: one round trip.
func (s *Store) AccountIDsByDomain(ctx context.Context, tenant string, domains []string) ([]string, error) {
	return s.hmget(ctx, s.scope(tenant).domains(), domains)
}

// ContactIDsByEmail implements sales.Store: one round trip.
func (s *Store) ContactIDsByEmail(ctx context.Context, tenant string, emails []string) ([]string, error) {
	return s.hmget(ctx, s.scope(tenant).emails(), emails)
}

// ContactIDsByCustomer implements sales.Store: one round trip ("" customers answer "").
func (s *Store) ContactIDsByCustomer(ctx context.Context, tenant string, customers []string) ([]string, error) {
	return s.hmget(ctx, s.scope(tenant).customers(), customers)
}

// hmget reads fields of a hash index: "" where a field is empty or absent.
func (s *Store) hmget(ctx context.Context, key string, fields []string) ([]string, error) {
	out := make([]string, len(fields))
	var at []int
	var want []string
	for i, f := range fields {
		if f != "" {
			at, want = append(at, i), append(want, f)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	v, err := s.rdb.HMGet(ctx, key, want...).Result()
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i], _ = v[j].(string)
	}
	return out, nil
}

// ImportAccounts implements sales.Store: the writes in a few script calls (commit.RunBatch),
// each atomic with its indexes and event.
func (s *Store) ImportAccounts(ctx context.Context, tenant string, writes []*sales.AccountWrite) ([]error, error) {
	k := s.scope(tenant)
	ws := make([]*commit.Write, len(writes))
	for i, aw := range writes {
		ws[i] = commit.New()
		k.putAccount(ws[i], aw.Account, aw.Prev)
		ws[i].Append(k.Stream(), aw.Event)
	}
	return k.runAll(ctx, s, ws)
}

// ImportContacts implements sales.Store, like ImportAccounts.
func (s *Store) ImportContacts(ctx context.Context, tenant string, writes []*sales.ContactWrite) ([]error, error) {
	k := s.scope(tenant)
	ws := make([]*commit.Write, len(writes))
	for i, cw := range writes {
		ws[i] = commit.New()
		k.putContact(ws[i], cw.Contact, cw.Prev, false)
		ws[i].Append(k.Stream(), cw.Event)
	}
	return k.runAll(ctx, s, ws)
}

func (k keys) runAll(ctx context.Context, s *Store, ws []*commit.Write) ([]error, error) {
	errs, err := commit.RunBatch(ctx, s.rdb, ws)
	if err != nil {
		return nil, err
	}
	for i := range errs {
		errs[i] = k.writeErr(errs[i])
	}
	return errs, nil
}
