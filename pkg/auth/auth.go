// Package auth holds tenants and API keys in Redis and authenticates callers.
//
// An API key belongs to one tenant and carries scopes ("marketing.read", "sales.write", ...,
// "admin"). Only the SHA-256 of a key is stored: keys are 256-bit random secrets, so a fast hash is
// enough, and the secret itself is shown once, at creation.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
)

// ScopeAdmin grants every scope.
const ScopeAdmin = "admin"

// Services whose scopes exist: "<service>.read", "<service>.write" and "<service>.export" (bulk
// reads of personal data: exports, which read need not grant).
var Services = []string{"marketing", "sales", "product", "support", "integration"}

// Errors of authentication.
var (
	ErrUnauthenticated = apierr.New(apierr.Unauthenticated, "UNAUTHENTICATED", "missing or invalid API key")
	ErrMissingScope    = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE", "the API key lacks the scope this call needs")
	ErrTenantNotFound  = errors.New("auth: tenant not found")
	ErrKeyNotFound     = errors.New("auth: API key not found")
	ErrKeyRevoked      = errors.New("auth: API key revoked")
	ErrTenantExists    = errors.New("auth: tenant already exists")
)

// Principal is an authenticated caller.
type Principal struct {
	TenantID string
	KeyID    string
	Scopes   []string
	// NotAfter is when the secret stops working (the key's expiry, or the end of a rotation's
	// overlap); zero for never.
	NotAfter time.Time
}

// Allows reports whether the principal holds scope (or admin).
func (p Principal) Allows(scope string) bool {
	return slices.Contains(p.Scopes, ScopeAdmin) || slices.Contains(p.Scopes, scope)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller; ok is false when the call was not authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// ValidateScopes checks that every scope is known.
func ValidateScopes(scopes []string) error {
	if len(scopes) == 0 {
		return errors.New("auth: at least one scope is required")
	}
	for _, s := range scopes {
		if s == ScopeAdmin {
			continue
		}
		svc, access, ok := strings.Cut(s, ".")
		if !ok || !slices.Contains(Services, svc) || (access != "read" && access != "write" && access != "export") {
			return fmt.Errorf("auth: unknown scope %q (want admin or <service>.read|write|export, service one of %s)",
				s, strings.Join(Services, ", "))
		}
	}
	return nil
}

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Store keeps tenants and API keys in Redis, under the crm:{auth} hash tag.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb, now: time.Now} }

func tenantKey(id string) string   { return "crm:{auth}:tenant:" + id }
func apiKeyKey(hash string) string { return "crm:{auth}:apikey:" + hash }

// Tenant is a customer of CRM Cycle: every resource belongs to exactly one.
type Tenant struct {
	ID          string
	DisplayName string
	CreateTime  time.Time
}

// CreateTenant creates a tenant; an empty id gets a random one.
func (s *Store) CreateTenant(ctx context.Context, id, displayName string) (Tenant, error) {
	if id == "" {
		id = randomID()
	}
	if !tenantIDPattern.MatchString(id) {
		return Tenant{}, fmt.Errorf("auth: tenant id %q must match %s", id, tenantIDPattern)
	}
	t := Tenant{ID: id, DisplayName: displayName, CreateTime: s.now().UTC()}
	created, err := s.rdb.HSetNX(ctx, tenantKey(id), "name", displayName).Result()
	if err != nil {
		return Tenant{}, err
	}
	if !created {
		return Tenant{}, fmt.Errorf("%w: %s", ErrTenantExists, id)
	}
	return t, s.rdb.HSet(ctx, tenantKey(id), "create_time", t.CreateTime.Format(time.RFC3339Nano)).Err()
}

// EnsureTenant creates the tenant unless it exists (for the development tenant).
func (s *Store) EnsureTenant(ctx context.Context, id, displayName string) error {
	_, err := s.CreateTenant(ctx, id, displayName)
	if errors.Is(err, ErrTenantExists) {
		return nil
	}
	return err
}

// NewKey is a key as created: Secret is shown once and never stored.
type NewKey struct {
	ID     string
	Secret string
}

// CreateKey creates an API key for an existing tenant.
func (s *Store) CreateKey(ctx context.Context, tenantID string, scopes []string) (NewKey, error) {
	return s.CreateKeyWith(ctx, tenantID, KeySpec{Scopes: scopes})
}

// RegisterKey stores a key whose secret the caller chose (the development key from
// CRM_DEV_API_KEY); registering the same secret again replaces its scopes.
func (s *Store) RegisterKey(ctx context.Context, tenantID string, k NewKey, scopes []string) error {
	return s.register(ctx, tenantID, k, KeySpec{Scopes: scopes})
}

// Lookup finds the principal of a secret; ErrUnauthenticated when there is none.
func (s *Store) Lookup(ctx context.Context, secret string) (Principal, error) {
	v, err := s.rdb.HMGet(ctx, apiKeyKey(hashSecret(secret)), "id", "tenant", "scopes", "not_after").Result()
	if err != nil {
		return Principal{}, err
	}
	id, _ := v[0].(string)
	tenant, _ := v[1].(string)
	scopes, _ := v[2].(string)
	notAfter, _ := v[3].(string)
	if id == "" || tenant == "" {
		return Principal{}, ErrUnauthenticated
	}
	p := Principal{TenantID: tenant, KeyID: id, Scopes: strings.Fields(scopes), NotAfter: parseMillis(notAfter)}
	if !p.NotAfter.IsZero() && !s.now().Before(p.NotAfter) {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func randomID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// RequiredScope is the scope a gRPC method needs: "<service>.read" for the methods that change
// nothing (Get*, BatchGet*, List*, Check*, Quote*, Resolve*) of crm.<service>.v1 services,
// "<service>.export" for bulk reads (Export*), "<service>.write" for the rest. Check, Quote and
// Resolve are reads that other services make with their caller's key: opening a ticket checks an
// entitlement, adding a line item prices it, creating a contact resolves the person to their
// customer id (registering a person the registry did not know is part of looking them up: one
// person is one customer whichever service sees them first). The integration service's audit
// log, API keys and settings need admin. public is true for health checks and reflection, which
// need no key; any other method needs admin.
func RequiredScope(fullMethod string) (scope string, public bool) {
	if strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.") {
		return "", true
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	parts := strings.Split(svc, ".")
	if !ok || len(parts) != 4 || parts[0] != "crm" || !slices.Contains(Services, parts[1]) {
		return ScopeAdmin, false
	}
	if adminOnly[method] && parts[1] == "integration" {
		return ScopeAdmin, false
	}
	if strings.HasPrefix(method, "Export") {
		return parts[1] + ".export", false
	}
	if reads(method) {
		return parts[1] + ".read", false
	}
	return parts[1] + ".write", false
}

// reads reports whether a method, by its name, changes nothing.
func reads(method string) bool {
	for _, read := range []string{"Get", "BatchGet", "List", "Check", "Quote", "Resolve", "Export"} {
		if strings.HasPrefix(method, read) {
			return true
		}
	}
	return false
}

// ChangesState reports whether a gRPC method changes state: every method that needs a write
// scope, and the admin ones that are not reads (creating, rotating and revoking API keys,
// updating the settings). Such calls take an idempotency key.
func ChangesState(fullMethod string) bool {
	scope, public := RequiredScope(fullMethod)
	if public {
		return false
	}
	_, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return strings.HasSuffix(scope, ".write") || (scope == ScopeAdmin && !reads(method))
}

// adminOnly are the integration methods that need admin rather than integration.read or .write:
// who did what in the tenant, the tenant's keys and its settings.
var adminOnly = map[string]bool{
	"ListAuditEntries": true, "CreateApiKey": true, "ListApiKeys": true, "RevokeApiKey": true,
	"RotateApiKey": true, "GetIntegrationSettings": true, "UpdateIntegrationSettings": true,
}

var errNoPrincipal = apierr.New(apierr.Unauthenticated, "UNAUTHENTICATED", "the call carries no authenticated tenant")

// TenantID returns the tenant of the authenticated caller: the only source of tenant ids, never the
// request body.
func TenantID(ctx context.Context) (string, error) {
	p, ok := FromContext(ctx)
	if !ok || p.TenantID == "" {
		return "", errNoPrincipal
	}
	return p.TenantID, nil
}
