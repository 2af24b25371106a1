package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redistest"
)

// runAuthenticator runs a's invalidation listener until the test ends; stop ends it earlier
// (flushing last-used times).
func runAuthenticator(t *testing.T, a *auth.Authenticator) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, redistest.Client(t)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// within polls cond until it holds, failing the test after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func refused(a *auth.Authenticator, secret string) bool {
	_, err := a.Authenticate(context.Background(), secret)
	return errors.Is(err, auth.ErrUnauthenticated)
}

func TestKeyListAndTenantIsolation(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant, other := newTenant(t, s), newTenant(t, s)
	expire := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	var ids []string
	for i := range 5 {
		k, err := s.CreateKeyWith(ctx, tenant, auth.KeySpec{DisplayName: "k", Scopes: []string{"sales.read"}, ExpireTime: expire, CreatorKeyID: "boss"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{k.ID}, ids...) // newest first
		if i == 0 {
			if _, err := s.Key(ctx, other, k.ID); !errors.Is(err, auth.ErrKeyNotFound) {
				t.Errorf("another tenant's Key: got %v, want ErrKeyNotFound", err)
			}
			if _, err := s.RevokeKey(ctx, other, k.ID); !errors.Is(err, auth.ErrKeyNotFound) {
				t.Errorf("another tenant's RevokeKey: got %v, want ErrKeyNotFound", err)
			}
			if _, _, err := s.RotateKey(ctx, other, k.ID, 0); !errors.Is(err, auth.ErrKeyNotFound) {
				t.Errorf("another tenant's RotateKey: got %v, want ErrKeyNotFound", err)
			}
		}
	}
	var got []string
	after := ""
	for {
		page, next, err := s.ListKeys(ctx, tenant, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page {
			got = append(got, k.ID)
			if !k.ExpireTime.Equal(expire) || k.CreatorKeyID != "boss" || k.DisplayName != "k" || k.CreateTime.IsZero() {
				t.Errorf("listed key %+v, want expiry %v, creator boss, name k, a create time", k, expire)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(got) != len(ids) {
		t.Fatalf("listed %v, want %v", got, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("listed %v, want %v (newest first)", got, ids)
		}
	}
	if page, _, err := s.ListKeys(ctx, other, "", 10); err != nil || len(page) != 0 {
		t.Errorf("another tenant lists %v, %v; want nothing", page, err)
	}
}

func TestRevocationReachesACachingAuthenticatorAtOnce(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	// An hour's cache: only the invalidation can make the revocation felt.
	a := auth.NewAuthenticator(s, time.Hour)
	runAuthenticator(t, a)
	within(t, 5*time.Second, "the listener subscribed and the key works", func() bool { return !refused(a, k.Secret) })
	revoked, err := s.RevokeKey(ctx, tenant, k.ID)
	if err != nil || revoked.RevokeTime.IsZero() {
		t.Fatalf("RevokeKey: %+v, %v", revoked, err)
	}
	took := within(t, time.Second, "revoked key refused", func() bool { return refused(a, k.Secret) })
	t.Logf("revocation felt after %v", took)
	if _, _, err := s.RotateKey(ctx, tenant, k.ID, 0); !errors.Is(err, auth.ErrKeyRevoked) {
		t.Errorf("rotating a revoked key: got %v, want ErrKeyRevoked", err)
	}
	if again, err := s.RevokeKey(ctx, tenant, k.ID); err != nil || !again.RevokeTime.Equal(revoked.RevokeTime) {
		t.Errorf("revoking again: %+v, %v; want the first revocation unchanged", again, err)
	}
}

func TestRotationOverlap(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(s, time.Hour)
	runAuthenticator(t, a)
	within(t, 5*time.Second, "the key works", func() bool { return !refused(a, k.Secret) })

	const overlap = 1500 * time.Millisecond
	info, second, err := s.RotateKey(ctx, tenant, k.ID, overlap)
	rotated := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if info.PreviousSecretExpireTime.IsZero() {
		t.Errorf("rotated key %+v: want the previous secret's end", info)
	}
	if refused(a, second) {
		t.Fatal("the new secret is refused")
	}
	p, err := a.Authenticate(ctx, k.Secret)
	if err != nil || p.KeyID != k.ID {
		t.Fatalf("the old secret within the overlap: %+v, %v; want key %s", p, err, k.ID)
	}
	within(t, overlap+time.Second, "the old secret refused after the overlap", func() bool { return refused(a, k.Secret) })
	if early := time.Since(rotated); early < overlap-50*time.Millisecond {
		t.Errorf("the old secret stopped after %v, want the overlap of %v", early, overlap)
	}

	// No overlap: the secret in use stops at once, and the one before it never comes back.
	_, third, err := s.RotateKey(ctx, tenant, k.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the replaced secret refused", func() bool { return refused(a, second) })
	if refused(a, third) || !refused(a, k.Secret) {
		t.Error("after a rotation without overlap: want only the newest secret to work")
	}
}

func TestConcurrentRotationsLeaveOneSecret(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := make([]string, 8)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			_, secret, err := s.RotateKey(ctx, tenant, k.ID, 0)
			if err != nil {
				t.Error(err)
			}
			secrets[i] = secret
		})
	}
	wg.Wait()
	working := 0
	for _, secret := range append(secrets, k.Secret) {
		if _, err := s.Lookup(ctx, secret); err == nil {
			working++
		}
	}
	if working != 1 {
		t.Errorf("%d secrets work after concurrent rotations, want 1", working)
	}
}

func TestExpiryAndLastUse(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKeyWith(ctx, tenant, auth.KeySpec{Scopes: []string{"sales.read"}, ExpireTime: time.Now().Add(700 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(s, time.Hour)
	stop := runAuthenticator(t, a)
	if refused(a, k.Secret) {
		t.Fatal("the key is refused before its expiry")
	}
	within(t, 2*time.Second, "the expired key refused", func() bool { return refused(a, k.Secret) })
	stop() // flushes the last use
	info, err := s.Key(ctx, tenant, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.LastUsedTime.IsZero() || time.Since(info.LastUsedTime) > time.Minute {
		t.Errorf("last used %v, want about now", info.LastUsedTime)
	}
}
