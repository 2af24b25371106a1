package redisstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// Tenants reads up to n of partition p's tenants with a history, in order, after after.
func (s *Store) Tenants(ctx context.Context, p int, after string, n int) ([]string, error) {
	lo := "-"
	if after != "" {
		lo = "(" + after
	}
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.TenantsOf(p), Start: lo, Stop: "+", ByLex: true, Count: int64(n)}).Result()
}

// Expired reads up to n ids of the tenant's history below cutoff (older), oldest first.
func (s *Store) Expired(ctx context.Context, tenant, cutoff string, n int) ([]string, error) {
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: AuditKey(s.Scope(tenant)), Start: "-", Stop: "(" + cutoff, ByLex: true, Count: int64(n)}).Result()
}

// Entries reads history entries by id; a missing one is nil.
func (s *Store) Entries(ctx context.Context, tenant string, ids []string) ([]*integrationv1.AuditEntry, error) {
	sc := s.Scope(tenant)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = EntryKey(sc, id)
	}
	all, err := commit.GetMany(ctx, s.rdb, keys, func() *integrationv1.AuditEntry { return &integrationv1.AuditEntry{} })
	if err != nil {
		return nil, err
	}
	for i, e := range all {
		if !e.ProtoReflect().IsValid() {
			all[i] = nil
		}
	}
	return all, nil
}

// maxMergeHops bounds how far a chain of merges is followed.
const maxMergeHops = 8

// MergeChains maps each customer to the customers its timeline went to through merges (itself
// first), one pipelined read per hop.
func (s *Store) MergeChains(ctx context.Context, tenant string, customers []string) (map[string][]string, error) {
	sc := s.Scope(tenant)
	chains := make(map[string][]string, len(customers))
	last := map[string]string{} // customer → the end of its chain so far, while it goes on
	for _, c := range customers {
		chains[c], last[c] = []string{c}, c
	}
	for hop := 0; hop < maxMergeHops && len(last) > 0; hop++ {
		pipe := s.rdb.Pipeline()
		gets := map[string]*redis.StringCmd{}
		for c, end := range last {
			gets[c] = pipe.Get(ctx, MergedKey(sc, end))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, err
		}
		for c, get := range gets {
			next, err := get.Result()
			if err != nil || next == "" {
				delete(last, c)
				continue
			}
			chains[c], last[c] = append(chains[c], next), next
		}
	}
	return chains, nil
}

// Trimmed is one history entry to remove and the indexes that list it.
type Trimmed struct {
	ID      string
	Indexes []string
}

// trimScript: KEYS[1] the audit log, then per entry its key, its marker and its n indexes; ARGV
// per entry its id, n and how long its marker must stay (s, 0 for none).
var trimScript = redis.NewScript(`
local k = 2
for i = 1, #ARGV, 3 do
  local id, n, guard = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if redis.call('DEL', KEYS[k]) == 1 and guard > 0 then
    redis.call('SET', KEYS[k + 1], '1', 'EX', guard)
  end
  for j = k + 2, k + 1 + n do redis.call('ZREM', KEYS[j], id) end
  redis.call('ZREM', KEYS[1], id)
  k = k + 2 + n
end
return 1`)

// Trim removes history entries and their ids from every index listed, and from the tenant's
// whole audit log, in one script; doing it again changes nothing. An entry is its event's
// redelivery guard: one removed before its event is events.SeenTTL old (at now) leaves a marker
// in its place until then.
func (s *Store) Trim(ctx context.Context, tenant string, now time.Time, entries []Trimmed) error {
	if len(entries) == 0 {
		return nil
	}
	sc := s.Scope(tenant)
	keys := []string{AuditKey(sc)}
	args := make([]any, 0, 3*len(entries))
	for _, e := range entries {
		keys = append(keys, EntryKey(sc, e.ID), MarkerKey(sc, e.ID))
		keys = append(keys, e.Indexes...)
		args = append(args, e.ID, len(e.Indexes), int64(guardLeft(e.ID, now)/time.Second))
	}
	return trimScript.Run(ctx, s.rdb, keys, args...).Err()
}

// guardLeft is how long the redelivery guard of event id must still hold at now: until the event
// is events.SeenTTL old, by the time in its UUIDv7 id (the whole SeenTTL for an id that is not one).
func guardLeft(id string, now time.Time) time.Duration {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return events.SeenTTL
	}
	sec, nsec := u.Time().UnixTime()
	if left := time.Unix(sec, nsec).Add(events.SeenTTL).Sub(now); left > time.Second {
		return left.Round(time.Second) + time.Second
	}
	return 0
}

// TrimLog removes an endpoint's delivery-log entries below cutoff (older).
func (s *Store) TrimLog(ctx context.Context, tenant, endpoint, cutoff string) error {
	return s.rdb.ZRemRangeByLex(ctx, DeliveryLogKey(s.Scope(tenant), endpoint), "-", "("+cutoff).Err()
}
