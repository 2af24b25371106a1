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
			if _, _, err := s.RevokeKey(ctx, other, k.ID); !errors.Is(err, auth.ErrKeyNotFound) {
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
	revoked, changed, err := s.RevokeKey(ctx, tenant, k.ID)
	if err != nil || !changed || revoked.RevokeTime.IsZero() {
		t.Fatalf("RevokeKey: %+v, %v", revoked, err)
	}
	took := within(t, time.Second, "revoked key refused", func() bool { return refused(a, k.Secret) })
	t.Logf("revocation felt after %v", took)
	if _, _, err := s.RotateKey(ctx, tenant, k.ID, 0); !errors.Is(err, auth.ErrKeyRevoked) {
		t.Errorf("rotating a revoked key: got %v, want ErrKeyRevoked", err)
	}
	if again, changed, err := s.RevokeKey(ctx, tenant, k.ID); err != nil || changed || !again.RevokeTime.Equal(revoked.RevokeTime) {
		t.Errorf("revoking again: %+v, changed %v, %v; want the first revocation unchanged", again, changed, err)
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

// TestEachRotationKeepsItsOverlap rotates twice with overlap under a controlled clock: the first
// secret works until its own overlap ends (the second rotation used to end it at once), the bound
// refuses a third rotation with overlap while both previous secrets work, and one without overlap
// is still taken.
func TestEachRotationKeepsItsOverlap(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	now := time.Now()
	auth.SetClock(s, func() time.Time { return now })
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	works := func(secret string) bool { _, err := s.Lookup(ctx, secret); return err == nil }
	start := now
	_, second, err := s.RotateKey(ctx, tenant, k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now = start.Add(10 * time.Minute)
	info, third, err := s.RotateKey(ctx, tenant, k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(70 * time.Minute).Truncate(time.Millisecond); !info.PreviousSecretExpireTime.Equal(want) {
		t.Errorf("previous secrets' end %v, want the last one's, %v", info.PreviousSecretExpireTime, want)
	}
	if !works(k.Secret) || !works(second) || !works(third) {
		t.Fatalf("after two rotations with an hour's overlap: first %v, second %v, third %v; want all working",
			works(k.Secret), works(second), works(third))
	}
	var tooMany *auth.ErrTooManySecrets
	if _, _, err := s.RotateKey(ctx, tenant, k.ID, time.Hour); !errors.As(err, &tooMany) ||
		!tooMany.Until.Equal(start.Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("a third rotation with overlap: got %v, want ErrTooManySecrets until the first overlap's end", err)
	}
	if !works(third) || !works(k.Secret) {
		t.Fatal("the refused rotation changed the secrets")
	}
	now = start.Add(time.Hour + time.Second)
	if works(k.Secret) || !works(second) || !works(third) {
		t.Errorf("after the first overlap: first %v, second %v, third %v; want only the first refused",
			works(k.Secret), works(second), works(third))
	}
	_, fourth, err := s.RotateKey(ctx, tenant, k.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Without overlap, only the new secret works from then on: a leaked one, current or kept, is
	// shut out at once.
	if works(third) || works(second) || !works(fourth) {
		t.Errorf("after a rotation without overlap: second %v, third %v, fourth %v; want only the fourth working",
			works(second), works(third), works(fourth))
	}
}

// TestConcurrentRotationsWithOverlapKeepEverySecret races rotations with overlap: none loses a
// secret it kept; those over the bound are refused, not lost.
func TestConcurrentRotationsWithOverlapKeepEverySecret(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := make([]string, 4)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			_, secret, err := s.RotateKey(ctx, tenant, k.ID, time.Hour)
			var tooMany *auth.ErrTooManySecrets
			if err != nil && !errors.As(err, &tooMany) {
				t.Error(err)
			}
			if err == nil {
				secrets[i] = secret
			}
		})
	}
	wg.Wait()
	taken := 0
	for _, secret := range secrets {
		if secret != "" {
			taken++
			if _, err := s.Lookup(ctx, secret); err != nil {
				t.Errorf("a rotated secret: %v", err)
			}
		}
	}
	if taken != auth.MaxPreviousSecrets {
		t.Errorf("%d rotations taken, want %d (the bound)", taken, auth.MaxPreviousSecrets)
	}
	if _, err := s.Lookup(ctx, k.Secret); err != nil {
		t.Errorf("the first secret within its overlap: %v", err)
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
