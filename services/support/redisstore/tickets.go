package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/services/support"
)

func (k scope) index(ix support.TicketIndex) string {
	switch {
	case ix.Status != 0:
		return k.Key("tickets", "status", ix.Status.String())
	case ix.Priority != 0:
		return k.Key("tickets", "priority", ix.Priority.String())
	case ix.Assignee != "":
		return k.Key("tickets", "assignee", ix.Assignee)
	case ix.Customer != "":
		return k.Key("tickets", "customer", ix.Customer)
	case ix.Product != "":
		return k.Key("tickets", "product", ix.Product)
	case ix.Breached:
		return k.Key("tickets", "breached")
	}
	return k.Key("tickets")
}

// indexes are the sorted sets a ticket belongs to; none for nil.
func (k scope) indexes(t *support.Ticket) map[string]bool {
	if t == nil {
		return nil
	}
	in := map[string]bool{
		k.index(support.TicketIndex{}):                            true,
		k.index(support.TicketIndex{Status: t.GetStatus()}):       true,
		k.index(support.TicketIndex{Priority: t.GetPriority()}):   true,
		k.index(support.TicketIndex{Customer: t.GetCustomerId()}): true,
	}
	if t.GetAssigneeId() != "" {
		in[k.index(support.TicketIndex{Assignee: t.GetAssigneeId()})] = true
	}
	if t.GetProductId() != "" {
		in[k.index(support.TicketIndex{Product: t.GetProductId()})] = true
	}
	if t.GetFirstResponse().GetBreached() || t.GetResolution().GetBreached() {
		in[k.index(support.TicketIndex{Breached: true})] = true
	}
	return in
}

// schedules are the due-time schedules and when a ticket is due in each.
var schedules = []struct {
	name support.Schedule
	due  func(*support.Ticket) (time.Time, bool)
}{
	{support.SlaSchedule, support.NextSlaDue},
	{support.AutoCloseSchedule, support.AutoCloseDue},
}

// SaveTicket implements support.Store.
func (s *Store) SaveTicket(ctx context.Context, tenant string, tw support.TicketWrite) error {
	k := s.scope(tenant)
	id, prevVersion := tw.Prev.GetId(), tw.Prev.GetEtag()
	if tw.Prev == nil {
		id = tw.Ticket.GetId()
	}
	w := commit.New().ExpectVersion(k.ticket(id), prevVersion)
	if tw.Ticket != nil {
		data, err := proto.Marshal(tw.Ticket)
		if err != nil {
			return err
		}
		w.Put(k.ticket(id), data, tw.Ticket.GetEtag())
		before, after := k.indexes(tw.Prev), k.indexes(tw.Ticket)
		for ix := range before {
			if !after[ix] {
				w.ZRem(ix, id)
			}
		}
		for ix := range after {
			if !before[ix] {
				w.ZAdd(ix, 0, id)
			}
		}
		for _, sc := range schedules {
			own, shared, member := k.Key(string(sc.name)), s.keys.Partitioned(service, s.keys.Partition(tenant), string(sc.name)), tenant+":"+id
			if due, ok := sc.due(tw.Ticket); ok {
				ms := float64(ceilMilli(due))
				w.ZAdd(own, ms, id).ZAdd(shared, ms, member)
			} else if _, was := sc.due(tw.Prev); tw.Prev != nil && was {
				w.ZRem(own, id).ZRem(shared, member)
			}
		}
		for field, delta := range tw.Tally {
			w.HIncrBy(k.stats(), field, delta)
		}
	}
	if c := tw.Comment; c != nil {
		data, err := proto.Marshal(c)
		if err != nil {
			return err
		}
		w.HSet(k.comments(id), c.GetId(), string(data)).ZAdd(k.commentIDs(id), 0, c.GetId())
	}
	for _, ev := range tw.Events {
		w.Append(k.Stream(), ev)
	}
	return staleAsDomain(w.Run(ctx, s.rdb))
}

// GetTicket implements support.Store: one round trip.
func (s *Store) GetTicket(ctx context.Context, tenant, id string) (*support.Ticket, error) {
	t := &support.Ticket{}
	found, err := get(ctx, s.rdb, s.scope(tenant).ticket(id), t)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, support.ErrTicketNotFound
	}
	return t, nil
}

// ListTickets implements support.Store: two round trips, whatever the number of tickets.
func (s *Store) ListTickets(ctx context.Context, tenant string, ix support.TicketIndex, p support.Page) ([]*support.Ticket, string, error) {
	k := s.scope(tenant)
	ids, next, err := pageIDs(ctx, s.rdb, k.index(ix), p, true)
	if err != nil || len(ids) == 0 {
		return nil, "", err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, k.ticket(id), commit.FieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", err
	}
	out := make([]*support.Ticket, 0, len(ids))
	for i, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		t := &support.Ticket{}
		if err := proto.Unmarshal(data, t); err != nil {
			return nil, "", fmt.Errorf("redisstore: decode ticket %s: %w", ids[i], err)
		}
		out = append(out, t)
	}
	return out, next, nil
}

// ListComments implements support.Store: two round trips.
func (s *Store) ListComments(ctx context.Context, tenant, ticketID string, p support.Page) ([]*support.Comment, string, error) {
	k := s.scope(tenant)
	ids, next, err := pageIDs(ctx, s.rdb, k.commentIDs(ticketID), p, false)
	if err != nil || len(ids) == 0 {
		return nil, "", err
	}
	raw, err := s.rdb.HMGet(ctx, k.comments(ticketID), ids...).Result()
	if err != nil {
		return nil, "", err
	}
	out := make([]*support.Comment, 0, len(ids))
	for i, r := range raw {
		data, ok := r.(string)
		if !ok {
			continue
		}
		c := &support.Comment{}
		if err := proto.Unmarshal([]byte(data), c); err != nil {
			return nil, "", fmt.Errorf("redisstore: decode comment %s: %w", ids[i], err)
		}
		out = append(out, c)
	}
	return out, next, nil
}

// pageIDs reads up to p.Limit ids of a sorted set of time-ordered ids after p.After, newest first
// or oldest first, and returns the cursor of the next page ("" on the last).
func pageIDs(ctx context.Context, rdb redis.UniversalClient, index string, p support.Page, newestFirst bool) ([]string, string, error) {
	start, stop := "-", "+"
	if p.After != "" {
		start = "(" + p.After
	}
	if newestFirst {
		start, stop = "+", "-"
		if p.After != "" {
			start = "(" + p.After
		}
	}
	ids, err := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: index, Start: start, Stop: stop, ByLex: true, Rev: newestFirst, Count: int64(p.Limit + 1),
	}).Result()
	if err != nil {
		return nil, "", err
	}
	if len(ids) > p.Limit {
		ids = ids[:p.Limit]
		return ids, ids[len(ids)-1], nil
	}
	return ids, "", nil
}

// DueTickets implements support.Store.
func (s *Store) DueTickets(ctx context.Context, tenant string, sc support.Schedule, now time.Time, limit int) ([]string, error) {
	return due(ctx, s.rdb, s.scope(tenant).Key(string(sc)), now, limit)
}

// DueInPartition implements support.Store.
func (s *Store) DueInPartition(ctx context.Context, partition int, sc support.Schedule, now time.Time, limit int) ([]support.Due, error) {
	members, err := due(ctx, s.rdb, s.keys.Partitioned(service, partition, string(sc)), now, limit)
	if err != nil {
		return nil, err
	}
	out := make([]support.Due, 0, len(members))
	for _, m := range members {
		// Ticket ids hold no colon, so the last one separates the tenant.
		i := strings.LastIndexByte(m, ':')
		out = append(out, support.Due{Tenant: m[:i], TicketID: m[i+1:]})
	}
	return out, nil
}

func due(ctx context.Context, rdb redis.UniversalClient, key string, now time.Time, limit int) ([]string, error) {
	return rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: key, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit),
	}).Result()
}

// ceilMilli is t in Unix milliseconds, rounded up: a schedule never calls a ticket due before it is.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}
