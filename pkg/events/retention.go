package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/logging"
)

// Retention bounds the event streams by age and length. Trimming never removes an entry that a
// consumer group has not yet acknowledged or not yet read.
type Retention struct {
	MaxAge time.Duration
	MaxLen int64
	// Interval is how often the streams are trimmed.
	Interval time.Duration
}

// trimBatch bounds how many entries one length-based pass looks at.
const trimBatch = 1000

// TrimStream trims one stream and returns how many entries it removed.
func TrimStream(ctx context.Context, rdb redis.UniversalClient, stream string, r Retention, now time.Time) (int64, error) {
	policy := streamID{}
	if r.MaxAge > 0 {
		policy = streamID{ms: uint64(now.Add(-r.MaxAge).UnixMilli())}
	}
	if r.MaxLen > 0 {
		n, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			return 0, err
		}
		if excess := n - r.MaxLen; excess > 0 {
			over, err := rdb.XRangeN(ctx, stream, "-", "+", min(excess, trimBatch)).Result()
			if err != nil {
				return 0, err
			}
			if len(over) > 0 {
				last, err := parseStreamID(over[len(over)-1].ID)
				if err != nil {
					return 0, err
				}
				policy = maxID(policy, last.next())
			}
		}
	}
	if policy == (streamID{}) {
		return 0, nil
	}
	safe, err := oldestNeeded(ctx, rdb, stream)
	if err != nil {
		return 0, err
	}
	cut := policy
	if safe != nil && safe.less(cut) {
		cut = *safe
	}
	return rdb.XTrimMinID(ctx, stream, cut.String()).Result()
}

// oldestNeeded is the oldest entry some group still needs: its oldest pending entry, or the first
// entry after the last one delivered to it. nil means no group needs anything.
func oldestNeeded(ctx context.Context, rdb redis.UniversalClient, stream string) (*streamID, error) {
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return nil, nil
		}
		return nil, err
	}
	var oldest *streamID
	keep := func(id streamID) {
		if oldest == nil || id.less(*oldest) {
			oldest = &id
		}
	}
	for _, g := range groups {
		last, err := parseStreamID(g.LastDeliveredID)
		if err != nil {
			return nil, err
		}
		keep(last.next())
		if g.Pending == 0 {
			continue
		}
		p, err := rdb.XPending(ctx, stream, g.Name).Result()
		if err != nil {
			return nil, err
		}
		lower, err := parseStreamID(p.Lower)
		if err != nil {
			return nil, err
		}
		keep(lower)
	}
	return oldest, nil
}

// RunRetention trims the partition streams of the given producers until ctx is done.
func RunRetention(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producers []string, r Retention, logger *slog.Logger) {
	if r.Interval <= 0 || (r.MaxAge <= 0 && r.MaxLen <= 0) {
		return
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	var failures logging.Recurring // Redis away fails every stream's trim, each round
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, producer := range producers {
			for p := range keys.Partitions() {
				stream := keys.Stream(producer, p)
				if _, err := TrimStream(ctx, rdb, stream, r, time.Now()); err != nil && ctx.Err() == nil {
					failures.Warn(ctx, logger, "events: trim", "stream", stream, "error", err)
				}
			}
		}
	}
}

// streamID is a Redis stream entry id, <milliseconds>-<sequence>.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	msPart, seqPart, _ := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if err1 != nil || (seqPart != "" && err2 != nil) {
		return streamID{}, fmt.Errorf("events: bad stream id %q", s)
	}
	return streamID{ms, seq}, nil
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

func (id streamID) next() streamID {
	if id.seq == ^uint64(0) {
		return streamID{ms: id.ms + 1}
	}
	return streamID{id.ms, id.seq + 1}
}

func (id streamID) String() string { return fmt.Sprintf("%d-%d", id.ms, id.seq) }

func maxID(a, b streamID) streamID {
	if a.less(b) {
		return b
	}
	return a
}
