package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
)

// SlaPolicies implements support.Store: one round trip for the four priorities.
func (s *Store) SlaPolicies(ctx context.Context, tenant string) (map[supportv1.TicketPriority]*support.SlaPolicy, error) {
	k := s.scope(tenant)
	var priorities []supportv1.TicketPriority
	var keys []string
	for value, name := range supportv1.TicketPriority_name {
		if value != 0 {
			priorities = append(priorities, supportv1.TicketPriority(value))
			keys = append(keys, k.policy(name))
		}
	}
	policies, err := commit.GetMany(ctx, s.rdb, keys, func() *support.SlaPolicy { return &support.SlaPolicy{} })
	if err != nil {
		return nil, err
	}
	out := map[supportv1.TicketPriority]*support.SlaPolicy{}
	for i, p := range policies {
		if p != nil {
			out[priorities[i]] = p
		}
	}
	return out, nil
}

// SaveSlaPolicy implements support.Store.
func (s *Store) SaveSlaPolicy(ctx context.Context, tenant string, p *support.SlaPolicy, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).policy(p.GetPriority().String()), p, p.GetEtag(), prev, event)
}

// Settings implements support.Store.
func (s *Store) Settings(ctx context.Context, tenant string) (*support.SupportSettings, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).settings(), &support.SupportSettings{}, nil)
}

// SaveSettings implements support.Store.
func (s *Store) SaveSettings(ctx context.Context, tenant string, st *support.SupportSettings, prev string, event []byte) error {
	return s.saveConfig(ctx, tenant, s.scope(tenant).settings(), st, st.GetEtag(), prev, event)
}

func (s *Store) saveConfig(ctx context.Context, tenant, key string, msg proto.Message, version, prev string, event []byte) error {
	return staleAsDomain(commit.New().Save(key, msg, prev, version).Append(s.scope(tenant).Stream(), event).Run(ctx, s.rdb))
}

// SaveNpsResponse implements support.Store.
func (s *Store) SaveNpsResponse(ctx context.Context, tenant string, r *support.NpsResponse, tally support.Tally, event []byte) error {
	k := s.scope(tenant)
	w := commit.New().Save(k.nps(r.GetId()), r, "", "1").Move(nil, k.npsIndexes(r))
	for field, delta := range tally {
		w.HIncrBy(k.stats(), field, delta)
	}
	return staleAsDomain(w.Append(k.Stream(), event).Run(ctx, s.rdb))
}

// Tally implements support.Store: one round trip.
func (s *Store) Tally(ctx context.Context, tenant string) (support.Tally, error) {
	m, err := s.rdb.HGetAll(ctx, s.scope(tenant).stats()).Result()
	if err != nil {
		return nil, err
	}
	out := make(support.Tally, len(m))
	for field, v := range m {
		if out[field], err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("redisstore: counter %s: %w", field, err)
		}
	}
	return out, nil
}

// npsIndex is the tenant's answers (customer "") or one customer's: equal scores, so the UUIDv7
// ids order them by time.
func (k scope) npsIndex(customer string) string {
	if customer == "" {
		return k.Key("nps-responses")
	}
	return k.Key("nps-responses", "customer", customer)
}

// npsIndexes are the index entries of an answer.
func (k scope) npsIndexes(r *support.NpsResponse) []commit.Entry {
	return []commit.Entry{{Index: k.npsIndex(""), Member: r.GetId()}, {Index: k.npsIndex(r.GetCustomerId()), Member: r.GetId()}}
}

// ListNpsResponses implements support.Store: two round trips, whatever the number of answers.
func (s *Store) ListNpsResponses(ctx context.Context, tenant, customer string, p page.Request) (page.Page[*support.NpsResponse], error) {
	k := s.scope(tenant)
	return commit.List(ctx, s.rdb, commit.Range{Index: k.npsIndex(customer), Desc: true, After: p.After, Limit: p.Limit},
		k.nps, func() *support.NpsResponse { return &support.NpsResponse{} })
}

// MoveNpsResponses implements support.MergeStore. An answer never changes after it is recorded
// (version "1" throughout); a merge re-points it, with its customer index entry, in one commit.
func (s *Store) MoveNpsResponses(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	from := k.npsIndex(merged)
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: from, Limit: limit})
	if err != nil || len(ids.Items) == 0 {
		return 0, err
	}
	answers, err := commit.GetIDs(ctx, s.rdb, ids.Items, k.nps, func() *support.NpsResponse { return &support.NpsResponse{} })
	if err != nil {
		return 0, err
	}
	w := commit.New()
	for i, r := range answers {
		if r == nil {
			w.ZRem(from, ids.Items[i])
			continue
		}
		next := proto.CloneOf(r)
		next.CustomerId = survivor
		w.Save(k.nps(r.GetId()), next, "1", "1").Move(k.npsIndexes(r), k.npsIndexes(next))
	}
	return len(ids.Items), staleAsDomain(w.Run(ctx, s.rdb))
}

// EraseNpsComments implements support.EraseStore: an answer keeps its version "1" (it never
// changes otherwise), its score, category and indexes; only answers with a comment are written.
func (s *Store) EraseNpsComments(ctx context.Context, tenant, customer, cursor string, limit int) (string, error) {
	k := s.scope(tenant)
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.npsIndex(customer), After: cursor, Limit: limit})
	if err != nil || len(ids.Items) == 0 {
		return "", err
	}
	answers, err := commit.GetIDs(ctx, s.rdb, ids.Items, k.nps, func() *support.NpsResponse { return &support.NpsResponse{} })
	if err != nil {
		return "", err
	}
	w := commit.New()
	for _, r := range answers {
		if r.GetComment() == "" {
			continue
		}
		next := proto.CloneOf(r)
		next.Comment = ""
		w.Save(k.nps(r.GetId()), next, "1", "1")
	}
	return ids.Next, staleAsDomain(w.Run(ctx, s.rdb))
}
