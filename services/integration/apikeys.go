package integration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// Errors of the API key use cases.
var (
	ErrKeyNotFound  = apierr.New(apierr.NotFound, "API_KEY_NOT_FOUND", "API key not found")
	ErrKeyRevoked   = apierr.New(apierr.FailedPrecondition, "API_KEY_REVOKED", "the API key is revoked")
	ErrScopeNotHeld = apierr.New(apierr.PermissionDenied, "SCOPE_NOT_HELD", "a new key's scopes must be held by the key creating it")
)

// ApiKeys are the tenant's API key use cases over the auth store. The key lives under crm:{auth}
// and its event on the integration stream: two slots, so the event follows the change (a crash
// between the two loses the audit entry, never the change).
type ApiKeys struct {
	keys      *auth.Store
	store     *redisstore.Store
	publisher events.Publisher
	now       func() time.Time
}

// NewApiKeys returns the use cases.
func NewApiKeys(keys *auth.Store, store *redisstore.Store, publisher events.Publisher, now func() time.Time) *ApiKeys {
	return &ApiKeys{keys: keys, store: store, publisher: publisher, now: now}
}

// Create makes a key whose scopes the caller holds; the secret is returned once.
func (k *ApiKeys) Create(ctx context.Context, caller auth.Principal, in *integrationv1.ApiKey) (auth.KeyInfo, string, error) {
	if err := auth.ValidateScopes(in.GetScopes()); err != nil {
		return auth.KeyInfo{}, "", apierr.Invalid("api_key.scopes", err.Error())
	}
	for _, s := range in.GetScopes() {
		if !caller.Allows(s) {
			return auth.KeyInfo{}, "", ErrScopeNotHeld.With("scope", s)
		}
	}
	var expire time.Time
	if in.GetExpireTime() != nil {
		expire = in.GetExpireTime().AsTime()
		if !expire.After(k.now()) {
			return auth.KeyInfo{}, "", apierr.Invalid("api_key.expire_time", "must be in the future")
		}
	}
	nk, err := k.keys.CreateKeyWith(ctx, caller.TenantID, auth.KeySpec{
		DisplayName: in.GetDisplayName(), Scopes: in.GetScopes(), ExpireTime: expire, CreatorKeyID: caller.KeyID,
	})
	if err != nil {
		return auth.KeyInfo{}, "", err
	}
	if err := k.emit(ctx, caller.TenantID, nk.ID, integrationv1.EventApiKeyCreated); err != nil {
		return auth.KeyInfo{}, "", err
	}
	info, err := k.keys.Key(ctx, caller.TenantID, nk.ID)
	return info, nk.Secret, err
}

func (k *ApiKeys) emit(ctx context.Context, tenant, id string, typ eventv1.Type[*integrationv1.ApiKeyChanged]) error {
	_, data, err := k.publisher.Envelope(ctx, typ.Of(&integrationv1.ApiKeyChanged{ApiKeyId: id}), tenant, "", k.now())
	if err != nil {
		return err
	}
	return commit.New().Append(k.store.Scope(tenant).Stream(), data).Run(ctx, k.store.Redis())
}

// List reads a page of the tenant's keys, newest first.
func (k *ApiKeys) List(ctx context.Context, tenant, after string, limit int) ([]auth.KeyInfo, string, error) {
	return k.keys.ListKeys(ctx, tenant, after, limit)
}

// Revoke revokes a key of the tenant. Revoking a revoked key answers it as it is and emits no
// event: the audit log records only what happened.
func (k *ApiKeys) Revoke(ctx context.Context, tenant, id string) (auth.KeyInfo, error) {
	info, changed, err := k.keys.RevokeKey(ctx, tenant, id)
	if err != nil || !changed {
		return info, keyError(err)
	}
	return info, k.emit(ctx, tenant, id, integrationv1.EventApiKeyRevoked)
}

// Rotate gives a key a new secret, the old one working for overlap; the secrets of earlier
// rotations keep working for theirs.
func (k *ApiKeys) Rotate(ctx context.Context, tenant, id string, overlap time.Duration) (auth.KeyInfo, string, error) {
	info, secret, err := k.keys.RotateKey(ctx, tenant, id, overlap)
	if err != nil {
		return auth.KeyInfo{}, "", keyError(err)
	}
	return info, secret, k.emit(ctx, tenant, id, integrationv1.EventApiKeyRotated)
}

// ErrTooManySecrets is a rotation with overlap refused while auth.MaxPreviousSecrets (or
// maxPreviousSecrets, a webhook's) previous secrets still work.
var ErrTooManySecrets = apierr.New(apierr.FailedPrecondition, "TOO_MANY_SECRETS", "")

// tooManySecrets is ErrTooManySecrets saying when a rotation with overlap is taken again.
func tooManySecrets(max int, until time.Time) error {
	return apierr.New(ErrTooManySecrets.Kind, ErrTooManySecrets.Reason, fmt.Sprintf(
		"%d previous secrets still work, each for the overlap its rotation gave it; rotate with overlapSeconds 0 "+
			"(the current secret then stops at once), or with an overlap after %s, when the first of them stops",
		max, until.UTC().Format(time.RFC3339))).With("retry_after", until.UTC().Format(time.RFC3339))
}

func keyError(err error) error {
	var tooMany *auth.ErrTooManySecrets
	switch {
	case errors.As(err, &tooMany):
		return tooManySecrets(auth.MaxPreviousSecrets, tooMany.Until)
	case errors.Is(err, auth.ErrKeyNotFound):
		return ErrKeyNotFound
	case errors.Is(err, auth.ErrKeyRevoked):
		return ErrKeyRevoked
	}
	return err
}
