package events

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// deadLetterScript parks an entry with its last error and acknowledges it, atomically: the entry
// is never both pending and dead, nor neither.
var deadLetterScript = redis.NewScript(`
redis.call('XADD', KEYS[2], '*', 'group', ARGV[1], 'source_id', ARGV[2], 'e', ARGV[3], 'error', ARGV[4], 'deliveries', ARGV[5])
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])`)

// replayScript moves a dead letter back onto its stream as a new entry. Every group of the stream
// sees it again; the groups that handled it before skip it by its event id.
var replayScript = redis.NewScript(`
local entries = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #entries == 0 then return 0 end
local fields = entries[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'e' then redis.call('XADD', KEYS[1], '*', 'e', fields[i + 1]) end
end
redis.call('XDEL', KEYS[2], ARGV[1])
return 1`)

// maxBulk bounds how many dead letters one replay or purge of "all" touches; run it again for more.
const maxBulk = 10_000

// DeadLetter is an event a group gave up on.
type DeadLetter struct {
	// Ref names the dead letter for replay and purge: "<partition>/<entry id>".
	Ref        string
	SourceID   string
	Event      *eventv1.Event
	Error      string
	Deliveries int
}

// DeadLetters lists up to limit dead letters of a group for a producer's streams, oldest first.
func DeadLetters(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer, group string, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	for p := range keys.Partitions() {
		if len(out) >= limit {
			break
		}
		msgs, err := rdb.XRangeN(ctx, keys.DeadLetters(producer, p, group), "-", "+", int64(limit-len(out))).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			d := DeadLetter{Ref: strconv.Itoa(p) + "/" + m.ID}
			d.SourceID, _ = m.Values["source_id"].(string)
			d.Error, _ = m.Values["error"].(string)
			n, _ := m.Values["deliveries"].(string)
			d.Deliveries, _ = strconv.Atoi(n)
			if ev, err := decodeEntry(m); err == nil {
				d.Event = ev
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// ReplayDeadLetters puts dead letters back on their streams; no refs means all of the group's.
func ReplayDeadLetters(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer, group string, refs []string) (int, error) {
	return eachDeadLetter(ctx, rdb, keys, producer, group, refs, func(p int, id string) (bool, error) {
		return replayScript.Run(ctx, rdb, []string{keys.Stream(producer, p), keys.DeadLetters(producer, p, group)}, id).Bool()
	})
}

// PurgeDeadLetters deletes dead letters; no refs means all of the group's.
func PurgeDeadLetters(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer, group string, refs []string) (int, error) {
	return eachDeadLetter(ctx, rdb, keys, producer, group, refs, func(p int, id string) (bool, error) {
		n, err := rdb.XDel(ctx, keys.DeadLetters(producer, p, group), id).Result()
		return n > 0, err
	})
}

func eachDeadLetter(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer, group string, refs []string, do func(p int, id string) (bool, error)) (int, error) {
	if len(refs) == 0 {
		all, err := DeadLetters(ctx, rdb, keys, producer, group, maxBulk)
		if err != nil {
			return 0, err
		}
		for _, d := range all {
			refs = append(refs, d.Ref)
		}
	}
	done := 0
	for _, ref := range refs {
		p, id, err := parseRef(ref, keys.Partitions())
		if err != nil {
			return done, err
		}
		ok, err := do(p, id)
		if err != nil {
			return done, err
		}
		if ok {
			done++
		}
	}
	return done, nil
}

func parseRef(ref string, partitions int) (int, string, error) {
	ps, id, ok := strings.Cut(ref, "/")
	p, err := strconv.Atoi(ps)
	if !ok || err != nil || p < 0 || p >= partitions || id == "" {
		return 0, "", fmt.Errorf("events: %q is not a dead-letter ref (<partition>/<entry id>)", ref)
	}
	return p, id, nil
}
