package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/page"
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

// indexes are the index entries of a ticket; none for nil.
func (k scope) indexes(t *support.Ticket) []commit.Entry {
	if t == nil {
		return nil
	}
	in := []support.TicketIndex{{}, {Status: t.GetStatus()}, {Priority: t.GetPriority()}, {Customer: t.GetCustomerId()}}
	if t.GetAssigneeId() != "" {
		in = append(in, support.TicketIndex{Assignee: t.GetAssigneeId()})
	}
	if t.GetProductId() != "" {
		in = append(in, support.TicketIndex{Product: t.GetProductId()})
	}
	if t.GetFirstResponse().GetBreached() || t.GetResolution().GetBreached() {
		in = append(in, support.TicketIndex{Breached: true})
	}
	out := make([]commit.Entry, len(in))
	for i, ix := range in {
		out[i] = commit.Entry{Index: k.index(ix), Member: t.GetId()}
	}
	return out
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
	w := commit.New()
	if tw.Ticket == nil {
		w.ExpectVersion(k.ticket(id), prevVersion)
	} else {
		w.Save(k.ticket(id), tw.Ticket, prevVersion, tw.Ticket.GetEtag()).Move(k.indexes(tw.Prev), k.indexes(tw.Ticket))
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
	return commit.Get(ctx, s.rdb, s.scope(tenant).ticket(id), &support.Ticket{}, support.ErrTicketNotFound)
}

// GetTickets implements support.Store: one round trip.
func (s *Store) GetTickets(ctx context.Context, tenant string, ids []string) ([]*support.Ticket, error) {
	return commit.GetIDs(ctx, s.rdb, ids, s.scope(tenant).ticket, func() *support.Ticket { return &support.Ticket{} })
}

// ListTickets implements support.Store: two round trips, whatever the number of tickets.
func (s *Store) ListTickets(ctx context.Context, tenant string, ix support.TicketIndex, p page.Request) (page.Page[*support.Ticket], error) {
	k := s.scope(tenant)
	return commit.List(ctx, s.rdb, commit.Range{Index: k.index(ix), Desc: true, After: p.After, Limit: p.Limit},
		k.ticket, func() *support.Ticket { return &support.Ticket{} })
}

// ListComments implements support.Store: two round trips, the ids oldest first, then the comments.
func (s *Store) ListComments(ctx context.Context, tenant, ticketID string, p page.Request) (page.Page[*support.Comment], error) {
	k := s.scope(tenant)
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.commentIDs(ticketID), After: p.After, Limit: p.Limit})
	if err != nil || len(ids.Items) == 0 {
		return page.Page[*support.Comment]{}, err
	}
	raw, err := s.rdb.HMGet(ctx, k.comments(ticketID), ids.Items...).Result()
	if err != nil {
		return page.Page[*support.Comment]{}, err
	}
	out := make([]*support.Comment, 0, len(raw))
	for i, r := range raw {
		data, ok := r.(string)
		if !ok {
			continue
		}
		c := &support.Comment{}
		if err := proto.Unmarshal([]byte(data), c); err != nil {
			return page.Page[*support.Comment]{}, fmt.Errorf("redisstore: decode comment %s: %w", ids.Items[i], err)
		}
		out = append(out, c)
	}
	return page.Page[*support.Comment]{Items: out, Next: ids.Next}, nil
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

// due reads up to limit members of a schedule, the earliest first, due by now.
func due(ctx context.Context, rdb redis.UniversalClient, key string, now time.Time, limit int) ([]string, error) {
	p, err := commit.Members(ctx, rdb, commit.Range{Index: key, ByScore: true, Max: strconv.FormatInt(now.UnixMilli(), 10), Limit: limit})
	return p.Items, err
}

// ceilMilli is t in Unix milliseconds, rounded up: a schedule never calls a ticket due before it is.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

var _ support.MergeStore = (*Store)(nil)

// MoveTickets implements support.MergeStore.
func (s *Store) MoveTickets(ctx context.Context, tenant, merged, survivor string, limit int) (int, error) {
	k := s.scope(tenant)
	from := k.index(support.TicketIndex{Customer: merged})
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: from, Limit: limit})
	if err != nil || len(ids.Items) == 0 {
		return 0, err
	}
	tickets, err := s.GetTickets(ctx, tenant, ids.Items)
	if err != nil {
		return 0, err
	}
	w := commit.New()
	for i, t := range tickets {
		if t == nil {
			w.ZRem(from, ids.Items[i])
			continue
		}
		next := proto.CloneOf(t)
		next.CustomerId, next.Etag = survivor, etag.Next(t.GetEtag())
		w.Save(k.ticket(t.GetId()), next, t.GetEtag(), next.GetEtag()).Move(k.indexes(t), k.indexes(next))
	}
	return len(ids.Items), staleAsDomain(w.Run(ctx, s.rdb))
}

var _ support.EraseStore = (*Store)(nil)

// EraseTickets implements support.EraseStore. The tickets keep their customer, so the cursor walks
// the customer's index; a ticket redacted before is not written again, its comments' keys are
// deleted again (nothing when gone).
func (s *Store) EraseTickets(ctx context.Context, tenant, customer, cursor string, limit int) (string, error) {
	k := s.scope(tenant)
	ids, err := commit.Members(ctx, s.rdb, commit.Range{Index: k.index(support.TicketIndex{Customer: customer}), After: cursor, Limit: limit})
	if err != nil || len(ids.Items) == 0 {
		return "", err
	}
	tickets, err := s.GetTickets(ctx, tenant, ids.Items)
	if err != nil {
		return "", err
	}
	w := commit.New()
	for i, t := range tickets {
		w.Delete(k.comments(ids.Items[i])).Delete(k.commentIDs(ids.Items[i]))
		if t == nil {
			continue
		}
		if next := support.RedactTicket(t); next != nil {
			next.Etag = etag.Next(t.GetEtag())
			w.Save(k.ticket(t.GetId()), next, t.GetEtag(), next.GetEtag()).Move(k.indexes(t), k.indexes(next))
		}
	}
	return ids.Next, staleAsDomain(w.Run(ctx, s.rdb))
}
