package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/redistest"
)

// TestAuthenticatorExpiry drives the cache clock: a revoked key works until the TTL passes, then
// not; a new key is found at once.
func TestAuthenticatorExpiry(t *testing.T) {
	rdb := redistest.Client(t)
	s := NewStore(rdb)
	ctx := context.Background()
	tenant := redistest.Tenant(t)
	if _, err := s.CreateTenant(ctx, tenant, "x"); err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, tenant, []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthenticator(s, time.Minute)
	a.now = func() time.Time { return now }

	if _, err := a.Authenticate(ctx, k.Secret); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := rdb.Del(ctx, apiKeyKey(hashSecret(k.Secret))).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		advance time.Duration
		wantErr error
	}{
		{name: "within the TTL", advance: 59 * time.Second, wantErr: nil},
		{name: "at the TTL", advance: time.Second, wantErr: ErrUnauthenticated},
		{name: "after the TTL", advance: time.Hour, wantErr: ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			if _, err := a.Authenticate(ctx, k.Secret); !errors.Is(err, tt.wantErr) {
				t.Errorf("Authenticate: got %v, want %v", err, tt.wantErr)
			}
		})
	}

	// A key created now is not hidden by the failure just seen.
	if err := s.RegisterKey(ctx, tenant, NewKey{ID: "again", Secret: k.Secret}, []string{"sales.write"}); err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, k.Secret)
	if err != nil || p.KeyID != "again" {
		t.Errorf("Authenticate of a re-registered key: got %+v, %v, want key id again", p, err)
	}
}
