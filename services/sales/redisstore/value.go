package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
)

// Tenant history fields of the value-history hash.
const (
	fieldSpanSum = "span_ms"
	fieldRepeat  = "repeat"
)

func (k keys) valueHistory() string { return k.Key("value-history") }

// valueMembers are the ranking entries of a customer's facts: recency (last order, ms),
// frequency (orders) and, in the main currency's index, revenue as a padded lex key.
func (k keys) valueMembers(v *sales.CustomerValue) []commit.Entry {
	if v.GetOrderCount() == 0 {
		return nil
	}
	id := v.GetCustomerId()
	out := []commit.Entry{
		{Index: k.index("value", "recency"), Member: id, Score: float64(v.GetLastOrderTime().AsTime().UnixMilli())},
		{Index: k.index("value", "frequency"), Member: id, Score: float64(v.GetOrderCount())},
	}
	if currency, key := salesv1.MonetaryKey(v); currency != "" {
		out = append(out, commit.Entry{Index: k.index("value", "monetary", currency), Member: key + "\x00" + id})
	}
	return out
}

// putValue adds a customer's new facts, their rankings and the tenant history to w; the version
// check makes two orders of one customer at once serialize.
func (k keys) putValue(w *commit.Write, vw *sales.ValueWrite) {
	if vw == nil {
		return
	}
	w.Save(k.resource("value", vw.Next.GetCustomerId()), vw.Next, vw.Prev.GetEtag(), vw.Next.GetEtag())
	w.Move(k.valueMembers(vw.Prev), k.valueMembers(vw.Next))
	if vw.SpanDelta != 0 {
		w.HIncrBy(k.valueHistory(), fieldSpanSum, vw.SpanDelta)
	}
	if vw.RepeatDelta != 0 {
		w.HIncrBy(k.valueHistory(), fieldRepeat, vw.RepeatDelta)
	}
}

// CustomerValue implements sales.Store: the facts and the contact link in one round trip.
func (s *Store) CustomerValue(ctx context.Context, tenant, customer string) (*sales.CustomerValue, bool, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	read := commit.Read(ctx, pipe, k.resource("value", customer))
	contact := pipe.HExists(ctx, k.customers(), customer)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, err
	}
	facts := &sales.CustomerValue{}
	found, err := read.Decode(facts)
	if err != nil || !found {
		return nil, contact.Val(), err
	}
	return facts, true, nil
}

// ValueRanks implements sales.Store: counts over the ranking indexes, O(log n) each, in one
// round trip.
func (s *Store) ValueRanks(ctx context.Context, tenant string, v *sales.CustomerValue) (sales.Ranks, error) {
	k := s.scope(tenant)
	pipe := s.rdb.Pipeline()
	recency, frequency := k.index("value", "recency"), k.index("value", "frequency")
	customers := pipe.ZCard(ctx, recency)
	recent := pipe.ZCount(ctx, recency, "-inf", "("+strconv.FormatInt(v.GetLastOrderTime().AsTime().UnixMilli(), 10))
	frequent := pipe.ZCount(ctx, frequency, "-inf", "("+strconv.FormatInt(v.GetOrderCount(), 10))
	currency, key := salesv1.MonetaryKey(v)
	monetary := k.index("value", "monetary", currency)
	inCurrency := pipe.ZCard(ctx, monetary)
	lessRevenue := pipe.ZLexCount(ctx, monetary, "-", "("+key+"\x00")
	history := pipe.HMGet(ctx, k.valueHistory(), fieldSpanSum, fieldRepeat)
	if _, err := pipe.Exec(ctx); err != nil {
		return sales.Ranks{}, err
	}
	h := history.Val()
	return sales.Ranks{
		Customers: customers.Val(), RecencyBelow: recent.Val(), FrequencyBelow: frequent.Val(),
		MonetaryCustomers: inCurrency.Val(), MonetaryBelow: lessRevenue.Val(),
		SpanSum: counter(h[0]), RepeatCustomers: counter(h[1]),
	}, nil
}

// counter reads a hash counter from HMGET's reply; 0 when absent.
func counter(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// MergeValues implements sales.Store.
func (s *Store) MergeValues(ctx context.Context, tenant string, m *sales.ValueMerge) error {
	k, w := s.scope(tenant), commit.New()
	events.Guard(w, k.Scope, m.Applied)
	w.ExpectVersion(k.resource("value", m.Merged.GetCustomerId()), m.Merged.GetEtag()).Delete(k.resource("value", m.Merged.GetCustomerId()))
	w.Save(k.resource("value", m.Combined.GetCustomerId()), m.Combined, m.Survivor.GetEtag(), m.Combined.GetEtag())
	w.Move(append(k.valueMembers(m.Survivor), k.valueMembers(m.Merged)...), k.valueMembers(m.Combined))
	if m.SpanDelta != 0 {
		w.HIncrBy(k.valueHistory(), fieldSpanSum, m.SpanDelta)
	}
	if m.RepeatDelta != 0 {
		w.HIncrBy(k.valueHistory(), fieldRepeat, m.RepeatDelta)
	}
	return valueWriteErr(w.Append(k.Stream(), m.Event).Run(ctx, s.rdb))
}

// PutAdvocate implements sales.Store.
func (s *Store) PutAdvocate(ctx context.Context, tenant string, prev, next *sales.CustomerValue, applied events.Effect, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	events.Guard(w, k.Scope, applied)
	w.Save(k.resource("value", next.GetCustomerId()), next, prev.GetEtag(), next.GetEtag())
	return valueWriteErr(w.Append(k.Stream(), event).Run(ctx, s.rdb))
}

// valueWriteErr is a value write's error as the sales package names it: a lost race (ErrStale:
// read again) or an event already applied (a redelivery).
func valueWriteErr(err error) error {
	switch {
	case errors.Is(err, commit.ErrVersionMismatch):
		return sales.ErrStale
	case errors.Is(err, commit.ErrAlreadyApplied):
		return sales.ErrAlreadyApplied
	}
	return err
}
