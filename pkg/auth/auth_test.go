package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func newTenant(t *testing.T, s *auth.Store) string {
	t.Helper()
	id := redistest.Tenant(t)
	if _, err := s.CreateTenant(context.Background(), id, "Test "+id); err != nil {
		t.Fatalf("CreateTenant(%q): %v", id, err)
	}
	return id
}

func TestCreateTenant(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	fresh := redistest.Tenant(t)
	tests := []struct {
		name    string
		id      string
		wantID  string // "" to accept any generated id
		wantErr bool
	}{
		{name: "given id", id: fresh, wantID: fresh},
		{name: "random id", id: ""},
		{name: "digits and dashes", id: "9" + fresh[1:] + "-x", wantID: "9" + fresh[1:] + "-x"},
		{name: "longest id", id: fresh + strings.Repeat("b", 32-len(fresh)), wantID: fresh + strings.Repeat("b", 32-len(fresh))},
		{name: "too long", id: fresh + strings.Repeat("b", 33-len(fresh)), wantErr: true},
		{name: "upper case", id: "Acme", wantErr: true},
		{name: "leading dash", id: "-acme", wantErr: true},
		{name: "underscore", id: "ac_me", wantErr: true},
		{name: "colon would break the key scheme", id: "acme:x", wantErr: true},
		{name: "braces would break the hash tag", id: "{acme}", wantErr: true},
		{name: "space", id: "ac me", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().UTC()
			got, err := s.CreateTenant(ctx, tt.id, "Acme Inc.")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CreateTenant(%q): got %+v, want an error", tt.id, got)
				}
				if err := s.EnsureTenant(ctx, tt.id, "x"); err == nil {
					t.Errorf("EnsureTenant(%q): got no error, want one", tt.id)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateTenant(%q): got %v, want no error", tt.id, err)
			}
			if tt.wantID != "" && got.ID != tt.wantID {
				t.Errorf("ID: got %q, want %q", got.ID, tt.wantID)
			}
			if got.ID == "" {
				t.Errorf("ID: got empty, want a generated id")
			}
			if got.DisplayName != "Acme Inc." {
				t.Errorf("DisplayName: got %q, want %q", got.DisplayName, "Acme Inc.")
			}
			if got.CreateTime.Before(before.Add(-time.Second)) || got.CreateTime.After(time.Now().Add(time.Second)) {
				t.Errorf("CreateTime: got %v, want about %v", got.CreateTime, before)
			}

			_, err = s.CreateTenant(ctx, got.ID, "Someone Else")
			if !errors.Is(err, auth.ErrTenantExists) {
				t.Errorf("second CreateTenant(%q): got %v, want %v", got.ID, err, auth.ErrTenantExists)
			}
			if err := s.EnsureTenant(ctx, got.ID, "Someone Else"); err != nil {
				t.Errorf("EnsureTenant of an existing tenant: got %v, want no error", err)
			}
			// The tenant can hold keys, so it is really there.
			if _, err := s.CreateKey(ctx, got.ID, []string{"sales.read"}); err != nil {
				t.Errorf("CreateKey for the new tenant: got %v, want no error", err)
			}
		})
	}
}

func TestCreateTenantRandomIDsDiffer(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	seen := map[string]bool{}
	for range 20 {
		tn, err := s.CreateTenant(context.Background(), "", "x")
		if err != nil {
			t.Fatal(err)
		}
		if seen[tn.ID] {
			t.Fatalf("random tenant id %q repeated", tn.ID)
		}
		seen[tn.ID] = true
	}
}

func TestEnsureTenantCreates(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	id := redistest.Tenant(t)
	if err := s.EnsureTenant(ctx, id, "Dev"); err != nil {
		t.Fatalf("EnsureTenant: %v", err)
	}
	if _, err := s.CreateTenant(ctx, id, "Dev"); !errors.Is(err, auth.ErrTenantExists) {
		t.Errorf("CreateTenant after EnsureTenant: got %v, want %v", err, auth.ErrTenantExists)
	}
}

func TestCreateKey(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	tests := []struct {
		name    string
		tenant  string
		scopes  []string
		wantErr error // errAny for an error of no particular identity
	}{
		{name: "one scope", tenant: tenant, scopes: []string{"marketing.read"}},
		{name: "several scopes", tenant: tenant, scopes: []string{"marketing.read", "marketing.write", "support.read"}},
		{name: "admin", tenant: tenant, scopes: []string{"admin"}},
		{name: "missing tenant", tenant: "nobody-" + tenant, scopes: []string{"sales.read"}, wantErr: auth.ErrTenantNotFound},
		{name: "unknown access", tenant: tenant, scopes: []string{"marketing.delete"}, wantErr: errAny},
		{name: "unknown service", tenant: tenant, scopes: []string{"billing.read"}, wantErr: errAny},
		{name: "no access part", tenant: tenant, scopes: []string{"marketing"}, wantErr: errAny},
		{name: "one bad scope among good ones", tenant: tenant, scopes: []string{"sales.read", "sales.*"}, wantErr: errAny},
		{name: "empty scope", tenant: tenant, scopes: []string{""}, wantErr: errAny},
		{name: "no scopes", tenant: tenant, scopes: nil, wantErr: errAny},
		{name: "upper case", tenant: tenant, scopes: []string{"Sales.Read"}, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := s.CreateKey(ctx, tt.tenant, tt.scopes)
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("CreateKey: got %v, want %v", err, tt.wantErr)
				}
				if k.Secret != "" {
					if _, err := s.Lookup(ctx, k.Secret); !errors.Is(err, auth.ErrUnauthenticated) {
						t.Errorf("Lookup of a refused key: got %v, want %v", err, auth.ErrUnauthenticated)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateKey: got %v, want no error", err)
			}
			if !strings.HasPrefix(k.Secret, "crm_") || len(k.Secret) < 40 || k.ID == "" {
				t.Errorf("key: got id %q secret %q, want an id and a long crm_ secret", k.ID, k.Secret)
			}
			got, err := s.Lookup(ctx, k.Secret)
			if err != nil {
				t.Fatalf("Lookup: got %v, want no error", err)
			}
			want := auth.Principal{TenantID: tt.tenant, KeyID: k.ID, Scopes: tt.scopes}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestLookupRejects(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	k, err := s.CreateKey(ctx, newTenant(t, s), []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"", "crm_wrong", k.Secret + "x", k.Secret[:len(k.Secret)-1], strings.ToUpper(k.Secret), " " + k.Secret} {
		t.Run(secret, func(t *testing.T) {
			p, err := s.Lookup(ctx, secret)
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("Lookup(%q): got %+v, %v, want %v", secret, p, err, auth.ErrUnauthenticated)
			}
		})
	}
}

func TestRegisterKeyReplacesScopes(t *testing.T) {
	s := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	tenant := newTenant(t, s)
	k := auth.NewKey{ID: "dev", Secret: "crm_dev_" + tenant}
	for _, scopes := range [][]string{{"admin"}, {"sales.read"}} {
		if err := s.RegisterKey(ctx, tenant, k, scopes); err != nil {
			t.Fatalf("RegisterKey(%v): %v", scopes, err)
		}
		got, err := s.Lookup(ctx, k.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(auth.Principal{TenantID: tenant, KeyID: "dev", Scopes: scopes}, got); diff != "" {
			t.Errorf("principal after RegisterKey(%v) (-want +got):\n%s", scopes, diff)
		}
	}
}

// TestSecretNotStored reads every key and value of the package's private Redis.
func TestSecretNotStored(t *testing.T) {
	rdb := redistest.Client(t)
	s := auth.NewStore(rdb)
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(k.Secret, "crm_")
	dumped := 0
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var texts []string
		texts = append(texts, key)
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "string":
			texts = append(texts, rdb.Get(ctx, key).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, key).Val() {
				texts = append(texts, f, v)
			}
		case "set":
			texts = append(texts, rdb.SMembers(ctx, key).Val()...)
		case "zset":
			texts = append(texts, rdb.ZRange(ctx, key, 0, -1).Val()...)
		case "list":
			texts = append(texts, rdb.LRange(ctx, key, 0, -1).Val()...)
		default:
			t.Fatalf("key %s: unexpected type %s", key, typ)
		}
		for _, text := range texts {
			if strings.Contains(text, body) {
				t.Errorf("key %s holds the secret: %q", key, text)
			}
		}
		dumped++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if dumped < 2 {
		t.Errorf("keys scanned: got %d, want at least the tenant and the key", dumped)
	}
	// The key is stored all the same.
	if _, err := s.Lookup(ctx, k.Secret); err != nil {
		t.Errorf("Lookup: got %v, want no error", err)
	}
}

// apiKeyOf finds the Redis key holding the API key with id keyID, without knowing the hash scheme.
func apiKeyOf(t *testing.T, rdb redis.UniversalClient, keyID string) string {
	t.Helper()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "crm:{auth}:apikey:*", 100).Iterator()
	for iter.Next(ctx) {
		if rdb.HGet(ctx, iter.Val(), "id").Val() == keyID {
			return iter.Val()
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no stored API key with id %s", keyID)
	return ""
}

func TestAuthenticatorCaches(t *testing.T) {
	rdb := redistest.Client(t)
	s := auth.NewStore(rdb)
	ctx := context.Background()
	tenant := newTenant(t, s)
	k, err := s.CreateKey(ctx, tenant, []string{"marketing.read"})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(s, time.Hour)
	want := auth.Principal{TenantID: tenant, KeyID: k.ID, Scopes: []string{"marketing.read"}}
	got, err := a.Authenticate(ctx, k.Secret)
	if err != nil {
		t.Fatalf("first Authenticate: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}

	if err := rdb.Del(ctx, apiKeyOf(t, rdb, k.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	got, err = a.Authenticate(ctx, k.Secret)
	if err != nil {
		t.Fatalf("Authenticate after revocation, within the TTL: got %v, want the cached principal", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cached principal (-want +got):\n%s", diff)
	}
	if _, err := auth.NewAuthenticator(s, time.Hour).Authenticate(ctx, k.Secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("fresh Authenticator after revocation: got %v, want %v", err, auth.ErrUnauthenticated)
	}
}

func TestAuthenticatorRejects(t *testing.T) {
	rdb := redistest.Client(t)
	s := auth.NewStore(rdb)
	ctx := context.Background()
	k, err := s.CreateKey(ctx, newTenant(t, s), []string{"sales.read"})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(s, time.Hour)
	if _, err := a.Authenticate(ctx, k.Secret); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, secret string }{
		{"empty", ""},
		{"wrong", "crm_nope"},
		{"cached key with a suffix", k.Secret + "x"},
		{"too long", k.Secret + strings.Repeat("x", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: a failure is not cached as a success.
			for i := range 2 {
				p, err := a.Authenticate(ctx, tt.secret)
				if !errors.Is(err, auth.ErrUnauthenticated) {
					t.Fatalf("Authenticate #%d: got %+v, %v, want %v", i+1, p, err, auth.ErrUnauthenticated)
				}
			}
		})
	}
}

func TestAuthenticatorRedisDown(t *testing.T) {
	rdb := redistest.Client(t)
	s := auth.NewStore(rdb)
	_ = rdb.Close()
	_, err := auth.NewAuthenticator(s, time.Hour).Authenticate(context.Background(), "crm_anything")
	if err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("Authenticate with Redis down: got %v, want an error other than %v", err, auth.ErrUnauthenticated)
	}
}

func TestRequiredScope(t *testing.T) {
	tests := []struct {
		method     string
		wantScope  string
		wantPublic bool
	}{
		{"/crm.marketing.v1.MarketingService/GetLead", "marketing.read", false},
		{"/crm.marketing.v1.MarketingService/ListLeads", "marketing.read", false},
		{"/crm.marketing.v1.MarketingService/CaptureLead", "marketing.write", false},
		{"/crm.marketing.v1.MarketingService/BatchGetLeads", "marketing.read", false},
		{"/crm.marketing.v1.MarketingService/BatchCreateLeads", "marketing.write", false},
		{"/crm.marketing.v1.MarketingService/ExportLeads", "marketing.export", false},
		{"/crm.sales.v1.SalesService/GetCustomer", "sales.read", false},
		{"/crm.sales.v1.SalesService/ConvertLead", "sales.write", false},
		{"/crm.product.v1.ProductService/ListProducts", "product.read", false},
		{"/crm.product.v1.ProductService/CreateProduct", "product.write", false},
		{"/crm.product.v1.ProductService/CheckEntitlement", "product.read", false},
		{"/crm.product.v1.ProductService/QuoteLineItems", "product.read", false},
		{"/crm.support.v1.SupportService/GetTicket", "support.read", false},
		{"/crm.support.v1.SupportService/SolveTicket", "support.write", false},
		{"/crm.integration.v1.IntegrationService/ListTimeline", "integration.read", false},
		{"/crm.integration.v1.IntegrationService/CreateWebhookEndpoint", "integration.write", false},
		{"/crm.integration.v1.IntegrationService/ListAuditEntries", "admin", false},
		{"/crm.integration.v1.IntegrationService/CreateApiKey", "admin", false},
		{"/crm.integration.v1.IntegrationService/ListApiKeys", "admin", false},
		{"/crm.integration.v1.IntegrationService/RevokeApiKey", "admin", false},
		{"/crm.integration.v1.IntegrationService/RotateApiKey", "admin", false},
		{"/crm.sales.v1.SalesService/ListAuditEntries", "sales.read", false},
		{"/grpc.health.v1.Health/Check", "", true},
		{"/grpc.health.v1.Health/Watch", "", true},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "", true},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "", true},
		{"/crm.billing.v1.BillingService/GetInvoice", "admin", false},
		{"/crm.admin.v1.AdminService/CreateTenant", "admin", false},
		{"/other.marketing.v1.MarketingService/GetLead", "admin", false},
		{"/crm.marketing.MarketingService/GetLead", "admin", false},
		{"/crm.marketing.v1.extra.MarketingService/GetLead", "admin", false},
		{"/grpc.healthy.v1.Health/Check", "admin", false},
		{"", "admin", false},
		{"garbage", "admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			scope, public := auth.RequiredScope(tt.method)
			if scope != tt.wantScope || public != tt.wantPublic {
				t.Errorf("RequiredScope(%q): got %q, %v, want %q, %v", tt.method, scope, public, tt.wantScope, tt.wantPublic)
			}
		})
	}
}

func TestPrincipalAllows(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		scope  string
		want   bool
	}{
		{"held scope", []string{"marketing.read"}, "marketing.read", true},
		{"read does not grant write", []string{"marketing.read"}, "marketing.write", false},
		{"write does not grant read", []string{"marketing.write"}, "marketing.read", false},
		{"other service", []string{"sales.read", "sales.write"}, "marketing.read", false},
		{"admin grants any service scope", []string{"admin"}, "support.write", true},
		{"admin grants admin", []string{"admin"}, "admin", true},
		{"admin among others", []string{"sales.read", "admin"}, "product.write", true},
		{"no scopes", nil, "sales.read", false},
		{"service scopes do not grant admin", []string{"marketing.read", "marketing.write", "sales.read", "sales.write"}, "admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (auth.Principal{Scopes: tt.scopes}).Allows(tt.scope); got != tt.want {
				t.Errorf("Principal%v.Allows(%q): got %v, want %v", tt.scopes, tt.scope, got, tt.want)
			}
		})
	}
}

func TestContextPrincipal(t *testing.T) {
	ctx := context.Background()
	if p, ok := auth.FromContext(ctx); ok {
		t.Errorf("FromContext of a bare context: got %+v, true, want false", p)
	}
	want := auth.Principal{TenantID: "acme", KeyID: "k1", Scopes: []string{"sales.read"}}
	got, ok := auth.FromContext(auth.WithPrincipal(ctx, want))
	if !ok {
		t.Fatal("FromContext: got false, want the principal")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		err  error
		want apierr.Kind
	}{
		{auth.ErrUnauthenticated, apierr.Unauthenticated},
		{auth.ErrMissingScope, apierr.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e, ok := apierr.As(tt.err)
			if !ok || e.Kind != tt.want {
				t.Errorf("kind of %v: got %+v, want %v", tt.err, e, tt.want)
			}
		})
	}
}
