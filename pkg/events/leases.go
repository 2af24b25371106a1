package events

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
)

// holdScript takes a free lease or renews one this consumer holds.
var holdScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// leases decide which consumer of a group reads which partition: one holder per partition, and
// no consumer holds more than its fair share (partitions / live consumers, rounded up), so a new
// consumer gets partitions as others shed their extra ones.
type leases struct {
	rdb   redis.UniversalClient
	keys  *keyspace.Space
	sub   Subscription
	name  string
	ttl   time.Duration
	held  atomic.Int64
	live  atomic.Int64
	mu    sync.Mutex
	owned map[int]bool
	// renewed is when each held lease was last taken or renewed: hold renews it only once a
	// quarter of its TTL has passed, not on every read.
	renewed map[int]time.Time
}

func newLeases(rdb redis.UniversalClient, keys *keyspace.Space, sub Subscription, name string, ttl time.Duration) *leases {
	return &leases{rdb: rdb, keys: keys, sub: sub, name: name, ttl: ttl, owned: map[int]bool{}, renewed: map[int]time.Time{}}
}

func (l *leases) fairShare() int64 {
	live := max(l.live.Load(), 1)
	return (int64(l.keys.Partitions()) + live - 1) / live
}

func (l *leases) mine(p int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned[p]
}

// fresh reports whether this consumer holds p and renewed its lease less than a quarter of its TTL
// ago, so that it has at least three quarters of the TTL left.
func (l *leases) fresh(p int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned[p] && time.Since(l.renewed[p]) < l.ttl/4
}

// set records whether p is held, and reports whether that is news (a lease taken or lost).
func (l *leases) set(p int, owned bool, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if owned {
		l.renewed[p] = at
	}
	if l.owned[p] == owned {
		return false
	}
	l.owned[p] = owned
	if owned {
		l.held.Add(1)
	} else {
		l.held.Add(-1)
	}
	return true
}

// hold reports whether this consumer should read partition p now, taking or renewing its lease,
// and whether it has just taken it.
func (l *leases) hold(ctx context.Context, p int) (held, taken bool, err error) {
	share := l.fairShare()
	if l.mine(p) {
		if h := l.held.Load(); h > share && l.held.CompareAndSwap(h, h-1) {
			l.mu.Lock()
			l.owned[p] = false
			l.mu.Unlock()
			return false, false, l.del(ctx, p)
		}
		if l.fresh(p) {
			return true, false, nil
		}
	} else if l.held.Load() >= share {
		return false, false, nil
	}
	at := time.Now() // before the call: the lease's expiry is at least this plus its TTL
	ok, err := holdScript.Run(ctx, l.rdb, []string{l.keys.Lease(l.sub.Producer, p, l.sub.Group)},
		l.name, l.ttl.Milliseconds()).Bool()
	if err != nil {
		l.set(p, false, at) // cannot tell: act as if lost, another consumer may take it
		return false, false, err
	}
	return ok, l.set(p, ok, at) && ok, nil
}

// release gives partition p up, so another consumer can take it without waiting for expiry.
func (l *leases) release(p int) {
	if !l.mine(p) {
		return
	}
	l.set(p, false, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.del(ctx, p)
}

func (l *leases) del(ctx context.Context, p int) error {
	return releaseScript.Run(ctx, l.rdb, []string{l.keys.Lease(l.sub.Producer, p, l.sub.Group)}, l.name).Err()
}

// heartbeat records this consumer as live and counts the group's live consumers.
func (l *leases) heartbeat(ctx context.Context) error {
	key := l.keys.Members(l.sub.Producer, l.sub.Group)
	now := time.Now()
	pipe := l.rdb.TxPipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: l.name})
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-3*l.ttl).UnixMilli(), 10))
	live := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	l.live.Store(live.Val())
	return nil
}

func (l *leases) keepAlive(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = l.heartbeat(ctx)
		}
	}
}

// leave removes this consumer from the live set, so the others' fair share grows at once.
func (l *leases) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.rdb.ZRem(ctx, l.keys.Members(l.sub.Producer, l.sub.Group), l.name).Err()
}
