package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// Marketing keeps what sales says each customer is worth (sales.customer.value_changed), with
// the same rankings sales keeps (recency and frequency by score, revenue per main currency as a
// padded key, the repeat customers' history), so segments read types, RFM scores and lifetime
// values exactly as sales serves them.
func (k leadKeys) customerValue(customer string) string { return k.Key("value", customer) }
func (k leadKeys) buyers() string                       { return k.Key("customers", "buyers") }
func (k leadKeys) valueRank(name ...string) string {
	return k.Key(append([]string{"customers", "value"}, name...)...)
}
func (k leadKeys) valueHistory() string { return k.Key("value-history") }

const (
	fieldSpanSum = "span_ms"
	fieldRepeat  = "repeat"
)

// valueMembers are a customer's ranking entries and their membership of the buyers index.
func (k leadKeys) valueMembers(v *salesv1.CustomerValue) []commit.Entry {
	if v.GetOrderCount() == 0 {
		return nil
	}
	id := v.GetCustomerId()
	out := []commit.Entry{
		{Index: k.buyers(), Member: id},
		{Index: k.valueRank("recency"), Member: id, Score: float64(v.GetLastOrderTime().AsTime().UnixMilli())},
		{Index: k.valueRank("frequency"), Member: id, Score: float64(v.GetOrderCount())},
	}
	if currency, key := salesv1.MonetaryKey(v); currency != "" {
		out = append(out, commit.Entry{Index: k.valueRank("monetary", currency), Member: key + "\x00" + id})
	}
	return out
}

// CustomerValue implements marketing.ReactionStore; nil when marketing has no value of the customer.
func (s *Store) CustomerValue(ctx context.Context, tenant, customer string) (*salesv1.CustomerValue, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).customerValue(customer), &salesv1.CustomerValue{}, nil)
}

// PutCustomerValue implements marketing.ReactionStore: the facts, their rankings and the history
// in one commit under the event's guard.
func (s *Store) PutCustomerValue(ctx context.Context, tenant string, applied events.Effect, prev, next *salesv1.CustomerValue) error {
	k := s.scope(tenant)
	w := events.Guard(commit.New(), k.Scope, applied)
	w.Save(k.customerValue(next.GetCustomerId()), next, prev.GetEtag(), next.GetEtag())
	w.Move(k.valueMembers(prev), k.valueMembers(next))
	if d := salesv1.RepeatSpan(next) - salesv1.RepeatSpan(prev); d != 0 {
		w.HIncrBy(k.valueHistory(), fieldSpanSum, d)
	}
	if prev.GetOrderCount() < 2 && next.GetOrderCount() >= 2 {
		w.HIncrBy(k.valueHistory(), fieldRepeat, 1)
	}
	err := w.Run(ctx, s.rdb)
	switch {
	case errors.Is(err, commit.ErrVersionMismatch):
		return marketing.ErrStale
	case errors.Is(err, commit.ErrAlreadyApplied):
		return marketing.ErrAlreadyApplied
	}
	return err
}

// customerValues fills in candidates' value facts and ranks: two round trips per batch.
func (s *Store) customerValues(ctx context.Context, k leadKeys, cs []marketing.Candidate) error {
	keys, of := []string{}, []int{}
	for i, c := range cs {
		if c.Lead != nil {
			keys, of = append(keys, k.customerValue(c.Lead.GetCustomerId())), append(of, i)
		}
	}
	values, err := commit.GetMany(ctx, s.rdb, keys, func() *salesv1.CustomerValue { return &salesv1.CustomerValue{} })
	if err != nil || len(keys) == 0 {
		return err
	}
	pipe := s.rdb.Pipeline()
	type rankCmds struct{ customers, recent, frequent, inCurrency, lessRevenue *redis.IntCmd }
	cmds := make([]*rankCmds, len(values))
	recency, frequency := k.valueRank("recency"), k.valueRank("frequency")
	customers := pipe.ZCard(ctx, recency)
	history := pipe.HMGet(ctx, k.valueHistory(), fieldSpanSum, fieldRepeat)
	for j, v := range values {
		if v.GetOrderCount() == 0 {
			continue
		}
		currency, key := salesv1.MonetaryKey(v)
		monetary := k.valueRank("monetary", currency)
		cmds[j] = &rankCmds{
			recent:      pipe.ZCount(ctx, recency, "-inf", "("+strconv.FormatInt(v.GetLastOrderTime().AsTime().UnixMilli(), 10)),
			frequent:    pipe.ZCount(ctx, frequency, "-inf", "("+strconv.FormatInt(v.GetOrderCount(), 10)),
			inCurrency:  pipe.ZCard(ctx, monetary),
			lessRevenue: pipe.ZLexCount(ctx, monetary, "-", "("+key+"\x00"),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	h := history.Val()
	for j, v := range values {
		c := &cs[of[j]].Facts
		c.Value = v
		if cmds[j] == nil {
			continue
		}
		c.Ranks = salesv1.ValueRanks{
			Customers: customers.Val(), RecencyBelow: cmds[j].recent.Val(), FrequencyBelow: cmds[j].frequent.Val(),
			MonetaryCustomers: cmds[j].inCurrency.Val(), MonetaryBelow: cmds[j].lessRevenue.Val(),
			SpanSum: counter(h[0]), RepeatCustomers: counter(h[1]),
		}
	}
	return nil
}

// counter reads a hash counter from HMGET's reply; 0 when absent.
func counter(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
