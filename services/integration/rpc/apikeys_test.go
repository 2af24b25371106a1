package rpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/servicetest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration"
)

func TestApiKeysOverGRPC(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()

	created, err := c.CreateApiKey(ctx, &integrationv1.CreateApiKeyRequest{ApiKey: &integrationv1.ApiKey{
		DisplayName: "billing", Scopes: []string{"sales.read", "integration.read", "marketing.read"}, ExpireTime: timestamppb.New(time.Now().Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.GetSecret(), "crm_") || created.GetApiKey().GetCreatorKeyId() == "" {
		t.Fatalf("created %v: want a secret and the creating key", created)
	}
	limited := servicetest.WithKey(context.Background(), created.GetSecret())

	// The new key can read what its scopes allow and nothing more: no admin routes, and the keys it
	// would create must be within its own scopes. (An empty timeline checks the customer in
	// marketing's registry with the caller's key: marketing.read.)
	if _, err := c.ListTimeline(limited, &integrationv1.ListTimelineRequest{CustomerId: "0192f3a0-0000-7000-8000-00000000c001"}); err != nil {
		t.Errorf("ListTimeline with integration.read: %v", err)
	}
	for name, call := range map[string]func() error{
		"ListAuditEntries": func() error {
			_, err := c.ListAuditEntries(limited, &integrationv1.ListAuditEntriesRequest{})
			return err
		},
		"CreateApiKey": func() error {
			_, err := c.CreateApiKey(limited, &integrationv1.CreateApiKeyRequest{ApiKey: &integrationv1.ApiKey{Scopes: []string{"sales.read"}}})
			return err
		},
	} {
		if code := status.Code(call()); code != codes.PermissionDenied {
			t.Errorf("%s with a non-admin key: %v, want PermissionDenied", name, code)
		}
	}

	for name, in := range map[string]*integrationv1.ApiKey{
		"unknown scope": {Scopes: []string{"sales.everything"}},
		"no scope":      {Scopes: nil},
		"expired":       {Scopes: []string{"sales.read"}, ExpireTime: timestamppb.New(time.Now().Add(-time.Minute))},
	} {
		if _, err := c.CreateApiKey(ctx, &integrationv1.CreateApiKeyRequest{ApiKey: in}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}

	list, err := c.ListApiKeys(ctx, &integrationv1.ListApiKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range list.GetApiKeys() {
		found = found || k.GetId() == created.GetApiKey().GetId()
	}
	if !found || strings.Contains(list.String(), created.GetSecret()) {
		t.Fatalf("list %v: want the new key, never a secret", list)
	}

	// Another tenant: NOT_FOUND for this tenant's key, an empty list.
	_, foreignKey := s.suite.NewKey(t, "", "admin")
	foreign := servicetest.WithKey(context.Background(), foreignKey)
	if _, err := c.RevokeApiKey(foreign, &integrationv1.RevokeApiKeyRequest{Id: created.GetApiKey().GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another tenant's revoke: %v, want NotFound", err)
	}
	if _, err := c.RotateApiKey(foreign, &integrationv1.RotateApiKeyRequest{Id: created.GetApiKey().GetId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another tenant's rotate: %v, want NotFound", err)
	}
	if l, err := c.ListApiKeys(foreign, &integrationv1.ListApiKeysRequest{}); err != nil || strings.Contains(l.String(), created.GetApiKey().GetId()) {
		t.Errorf("another tenant lists %v, %v", l, err)
	}

	rotated, err := c.RotateApiKey(ctx, &integrationv1.RotateApiKeyRequest{Id: created.GetApiKey().GetId(), OverlapSeconds: 60})
	if err != nil || rotated.GetSecret() == created.GetSecret() || rotated.GetApiKey().GetPreviousSecretExpireTime() == nil {
		t.Fatalf("rotate: %v, %v", rotated, err)
	}
	revoked, err := c.RevokeApiKey(ctx, &integrationv1.RevokeApiKeyRequest{Id: created.GetApiKey().GetId()})
	if err != nil || revoked.GetApiKey().GetRevokeTime() == nil {
		t.Fatalf("revoke: %v, %v", revoked, err)
	}
	eventually(t, 2*time.Second, "the revoked key refused", func() bool {
		_, err := c.ListTimeline(limited, &integrationv1.ListTimelineRequest{CustomerId: "c-1"})
		return status.Code(err) == codes.Unauthenticated
	})
	if _, err := c.RotateApiKey(ctx, &integrationv1.RotateApiKeyRequest{Id: created.GetApiKey().GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("rotating a revoked key: %v, want FailedPrecondition", err)
	}

	// Each change is in the audit log, by the admin key.
	eventually(t, 5*time.Second, "the key changes in the audit log", func() bool {
		l, err := c.ListAuditEntries(ctx, &integrationv1.ListAuditEntriesRequest{
			Filter: `resource = "integration.api_key/` + created.GetApiKey().GetId() + `"`})
		return err == nil && len(l.GetAuditEntries()) == 3
	})
}

func TestEndpointValidationAndIsolation(t *testing.T) {
	s := startSystem(t, fastWebhooks) // private targets allowed
	guarded := startSystem(t, guardedWebhooks())
	c, ctx := guarded.client()
	for _, url := range []string{"http://127.0.0.1:9/hook", "http://[::1]/x", "http://10.0.0.1/", "http://169.254.169.254/", "http://LOCALHOST/", "ftp://example.com/", "http://user:pw@example.com/", "not a url"} {
		_, err := c.CreateWebhookEndpoint(ctx, &integrationv1.CreateWebhookEndpointRequest{WebhookEndpoint: &integrationv1.WebhookEndpoint{Url: url}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("endpoint %q without allow-private: %v, want InvalidArgument", url, err)
		}
	}
	if l, err := c.ListWebhookEndpoints(ctx, &integrationv1.ListWebhookEndpointsRequest{}); err != nil || len(l.GetWebhookEndpoints()) != 0 {
		t.Errorf("after refused creates: %v, %v; want nothing written", l, err)
	}
	if _, err := c.CreateWebhookEndpoint(ctx, &integrationv1.CreateWebhookEndpointRequest{WebhookEndpoint: &integrationv1.WebhookEndpoint{
		Url: "https://hooks.example.com/crm", EventTypes: []string{"sales.*", "Bad Type"}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a malformed event type: %v, want InvalidArgument", err)
	}

	ep := s.createEndpoint(t, "https://hooks.example.com/crm", "sales.*")
	sc, sctx := s.client()
	_, foreignKey := s.suite.NewKey(t, "", "admin")
	foreign := servicetest.WithKey(context.Background(), foreignKey)
	for name, call := range map[string]func(context.Context) error{
		"get": func(ctx context.Context) error {
			_, err := sc.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
			return err
		},
		"delete": func(ctx context.Context) error {
			_, err := sc.DeleteWebhookEndpoint(ctx, &integrationv1.DeleteWebhookEndpointRequest{Id: ep.GetId()})
			return err
		},
		"rotate": func(ctx context.Context) error {
			_, err := sc.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId()})
			return err
		},
		"deliveries": func(ctx context.Context) error {
			_, err := sc.ListDeliveries(ctx, &integrationv1.ListDeliveriesRequest{EndpointId: ep.GetId()})
			return err
		},
	} {
		if code := status.Code(call(foreign)); code != codes.NotFound {
			t.Errorf("another tenant's %s: %v, want NotFound", name, code)
		}
	}
	// A stale etag is refused; the current one applies.
	if _, err := sc.UpdateWebhookEndpoint(sctx, &integrationv1.UpdateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Description: "x", Etag: "99"}, UpdateMask: mask("description")}); status.Code(err) != codes.Aborted {
		t.Errorf("stale etag: %v, want Aborted", err)
	}
	up, err := sc.UpdateWebhookEndpoint(sctx, &integrationv1.UpdateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Description: "billing", Etag: ep.GetEtag()}, UpdateMask: mask("description")})
	if err != nil || up.GetWebhookEndpoint().GetDescription() != "billing" || up.GetWebhookEndpoint().GetSecret() != "" {
		t.Errorf("update: %v, %v", up, err)
	}
}

// guardedWebhooks is fastWebhooks without allow-private.
func guardedWebhooks() (cfg integration.DispatchConfig) {
	cfg = fastWebhooks
	cfg.AllowPrivate = false
	return cfg
}

// TestAdminWritesTakeAnIdempotencyKey: creating and rotating a key and changing the settings are
// writes, so a retry with the same Idempotency-Key replays the first result (one key made, one
// rotation) and the same key with another request is refused. A replay never carries the secret
// (kept hashed only): the first answer had it, and it still works.
func TestAdminWritesTakeAnIdempotencyKey(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	with := func(key string) context.Context { return metadata.AppendToOutgoingContext(ctx, "idempotency-key", key) }
	count := func() int {
		list, err := c.ListApiKeys(ctx, &integrationv1.ListApiKeysRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.GetApiKeys())
	}
	before := count()
	req := &integrationv1.CreateApiKeyRequest{ApiKey: &integrationv1.ApiKey{DisplayName: "retry", Scopes: []string{"integration.read", "marketing.read"}}}
	first, err := c.CreateApiKey(with("create-1"), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CreateApiKey(with("create-1"), req)
	if err != nil || again.GetApiKey().GetId() != first.GetApiKey().GetId() || again.GetSecret() != "" || first.GetSecret() == "" {
		t.Fatalf("create replayed = %v %v, want key %s without its secret", again, err, first.GetApiKey().GetId())
	}
	if n := count(); n != before+1 {
		t.Fatalf("%d keys made by two calls with one idempotency key, want 1", n-before)
	}
	other := &integrationv1.CreateApiKeyRequest{ApiKey: &integrationv1.ApiKey{DisplayName: "other", Scopes: []string{"sales.read"}}}
	if _, err := c.CreateApiKey(with("create-1"), other); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "key") {
		t.Errorf("another request with the key: %v, want INVALID_ARGUMENT (IDEMPOTENCY_KEY_REUSED)", err)
	}

	rotate := &integrationv1.RotateApiKeyRequest{Id: first.GetApiKey().GetId(), OverlapSeconds: 60}
	rotated, err := c.RotateApiKey(with("rotate-1"), rotate)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := c.RotateApiKey(with("rotate-1"), rotate)
	if err != nil || replayed.GetSecret() != "" || replayed.GetApiKey().GetId() != first.GetApiKey().GetId() {
		t.Fatalf("rotate replayed = %v %v, want the key without a secret", replayed, err)
	}
	// One rotation: the first secret (in its overlap) and the rotated one both work.
	for _, secret := range []string{first.GetSecret(), rotated.GetSecret()} {
		if _, err := c.ListTimeline(servicetest.WithKey(context.Background(), secret),
			&integrationv1.ListTimelineRequest{CustomerId: "0192f3a0-0000-7000-8000-00000000c001"}); err != nil {
			t.Errorf("a secret of the one rotation: %v", err)
		}
	}
}

// TestApiKeyRotationsKeepTheirOverlapsAndRevokeOnce: two rotations with an hour's overlap leave the
// first secret working (the second used to end its overlap at once), a third with overlap is
// FAILED_PRECONDITION TOO_MANY_SECRETS; revoking twice answers the key as revoked the first time
// and writes one event, so the audit log records one revocation.
func TestApiKeyRotationsKeepTheirOverlapsAndRevokeOnce(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	created, err := c.CreateApiKey(ctx, &integrationv1.CreateApiKeyRequest{ApiKey: &integrationv1.ApiKey{Scopes: []string{"integration.read"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetApiKey().GetId()
	secrets := []string{created.GetSecret()}
	for range 2 {
		rotated, err := c.RotateApiKey(ctx, &integrationv1.RotateApiKeyRequest{Id: id, OverlapSeconds: 3600})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, rotated.GetSecret())
	}
	for i, secret := range secrets {
		if _, err := c.ListWebhookEndpoints(servicetest.WithKey(context.Background(), secret), &integrationv1.ListWebhookEndpointsRequest{}); err != nil {
			t.Errorf("secret %d after two rotations with an hour's overlap: %v", i, err)
		}
	}
	_, err = c.RotateApiKey(ctx, &integrationv1.RotateApiKeyRequest{Id: id, OverlapSeconds: 3600})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "overlapSeconds 0") {
		t.Fatalf("a third rotation with overlap: %v, want FailedPrecondition saying how to go on", err)
	}
	if _, err := c.ListWebhookEndpoints(servicetest.WithKey(context.Background(), secrets[2]), &integrationv1.ListWebhookEndpointsRequest{}); err != nil {
		t.Errorf("the current secret after the refused rotation: %v", err)
	}

	revoked, err := c.RevokeApiKey(ctx, &integrationv1.RevokeApiKeyRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	_, events := s.suite.Footprint(t, "integration", s.tenant)
	again, err := c.RevokeApiKey(ctx, &integrationv1.RevokeApiKeyRequest{Id: id})
	if err != nil || !again.GetApiKey().GetRevokeTime().AsTime().Equal(revoked.GetApiKey().GetRevokeTime().AsTime()) {
		t.Fatalf("revoking again: %v, %v; want the key as it is", again, err)
	}
	if _, after := s.suite.Footprint(t, "integration", s.tenant); after != events {
		t.Errorf("revoking a revoked key wrote %d events, want none", after-events)
	}
}
