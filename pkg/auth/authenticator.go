package auth

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/redisconn"
)

// Authenticator resolves secrets to principals, caching answers briefly so that a request costs no
// extra Redis round trip. A new key works at once; a revoked or rotated one is dropped from the
// cache as soon as Run hears of it (KeysChanged), and in any case within the cache TTL. It also
// remembers when each key was last used and writes that down every usedFlush, not on every call.
type Authenticator struct {
	store *Store
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cached
	used  map[string]time.Time // key id → last use since the last flush

	following     chan struct{} // closed when Run's subscription first starts
	startFollowed sync.Once
}

type cached struct {
	p       Principal
	expires time.Time
}

// maxCached bounds the cache; past it the cache starts over (keys in use come back on first call).
const maxCached = 100_000

// usedFlush is how often last-used times are written: a listed key's last use is this recent.
const usedFlush = 30 * time.Second

// NewAuthenticator returns an Authenticator over store with the given cache TTL.
func NewAuthenticator(store *Store, ttl time.Duration) *Authenticator {
	return &Authenticator{store: store, ttl: ttl, now: time.Now, cache: map[string]cached{}, used: map[string]time.Time{},
		following: make(chan struct{})}
}

// Following is closed once Run's subscription has started: from then on a revoked key is dropped
// as soon as its revocation is published, and the cache is no longer dropped whole at the start
// (a test that counts a call's round trips waits for it, or the start may empty the cache between
// two calls).
func (a *Authenticator) Following() <-chan struct{} { return a.following }

// Authenticate returns the principal of secret.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" || len(secret) > 256 {
		return Principal{}, ErrUnauthenticated
	}
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[secret]
	if ok && now.Before(c.expires) {
		a.used[c.p.KeyID] = now
		a.mu.Unlock()
		return c.p, nil
	}
	a.mu.Unlock()
	p, err := a.store.Lookup(ctx, secret)
	if err != nil {
		return Principal{}, err
	}
	expires := now.Add(a.ttl)
	if !p.NotAfter.IsZero() && p.NotAfter.Before(expires) {
		expires = p.NotAfter
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		a.cache = map[string]cached{}
	}
	a.cache[secret] = cached{p: p, expires: expires}
	a.used[p.KeyID] = now
	a.mu.Unlock()
	return p, nil
}

// Run listens for revoked and rotated keys on rdb until ctx is done, dropping their cached
// secrets, and writes last-used times every usedFlush. Whenever the subscription (re)starts or
// breaks, the whole cache is dropped: a change published meanwhile must not live out the TTL.
func (a *Authenticator) Run(ctx context.Context, rdb redis.UniversalClient) error {
	defer a.flushUsed(context.WithoutCancel(ctx))
	nextFlush := a.now().Add(usedFlush)
	redisconn.Follow(ctx, rdb, KeysChanged, a.drop, a.gap, func() {
		if now := a.now(); now.After(nextFlush) {
			a.flushUsed(ctx)
			nextFlush = now.Add(usedFlush)
		}
	})
	return nil
}

// gap drops the whole cache: what was published while the subscription was not up is unknown.
func (a *Authenticator) gap() {
	a.mu.Lock()
	a.cache = map[string]cached{}
	a.mu.Unlock()
	a.startFollowed.Do(func() { close(a.following) })
}

// drop forgets the cached secrets of key id.
func (a *Authenticator) drop(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for secret, c := range a.cache {
		if c.p.KeyID == id {
			delete(a.cache, secret)
		}
	}
}

func (a *Authenticator) flushUsed(ctx context.Context) {
	a.mu.Lock()
	used := a.used
	a.used = map[string]time.Time{}
	a.mu.Unlock()
	_ = a.store.MarkUsed(ctx, used) // a lost flush only makes a last-used time older
}
