package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// An API key's life: created (with a name, scopes, an expiry), used, rotated (the previous secret
// keeps working for an overlap), revoked. Three kinds of keys, all under the crm:{auth} hash tag
// so that each change is one atomic script:
//
//	crm:{auth}:apikey:<sha256 of a secret>  what a call's secret resolves to (id, tenant, scopes,
//	                                        not_after); one per working secret
//	crm:{auth}:key:<id>                     the key's record (name, scopes, times, current and
//	                                        previous secret hashes)
//	crm:{auth}:tenant:<tenant>:keys         the tenant's key ids, time-ordered (UUIDv7)
//
// Revoking or rotating publishes the key id on KeysChanged, so every process's Authenticator drops
// what it cached for the key at once rather than at the end of its cache TTL.

// KeysChanged is the pub/sub channel of revoked and rotated key ids.
const KeysChanged = "crm:{auth}:keys:changed"

// noKey stands in for an absent secret hash in a script's declared keys.
const noKey = "crm:{auth}:apikey:none"

func keyRecordKey(id string) string      { return "crm:{auth}:key:" + id }
func tenantKeysKey(tenant string) string { return "crm:{auth}:tenant:" + tenant + ":keys" }

func secretKeyOrNone(hash string) string {
	if hash == "" {
		return noKey
	}
	return apiKeyKey(hash)
}

// formatMillis is t in Unix milliseconds, "" for the zero time (never).
func formatMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func parseMillis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// KeySpec is what a new key is made of.
type KeySpec struct {
	DisplayName string
	Scopes      []string
	// ExpireTime is when the key stops working; zero for never.
	ExpireTime time.Time
	// CreatorKeyID is the key that created this one; empty for an operator's (crm admin).
	CreatorKeyID string
}

// KeyInfo is a key as listed: never its secret.
type KeyInfo struct {
	ID, TenantID, DisplayName, CreatorKeyID string
	Scopes                                  []string
	CreateTime, ExpireTime, LastUsedTime    time.Time
	RevokeTime, PreviousSecretExpireTime    time.Time
}

// CreateKeyWith creates an API key for an existing tenant; its secret is in the result only.
func (s *Store) CreateKeyWith(ctx context.Context, tenantID string, spec KeySpec) (NewKey, error) {
	k := NewKey{ID: uuid.Must(uuid.NewV7()).String(), Secret: newSecret()}
	return k, s.register(ctx, tenantID, k, spec)
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "crm_" + base64.RawURLEncoding.EncodeToString(b)
}

var registerScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('TENANT_NOT_FOUND') end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'tenant', ARGV[2], 'scopes', ARGV[3], 'create_time', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'not_after', ARGV[5])
  redis.call('PEXPIREAT', KEYS[2], ARGV[5])
else
  redis.call('HDEL', KEYS[2], 'not_after')
  redis.call('PERSIST', KEYS[2])
end
redis.call('HSET', KEYS[3], 'tenant', ARGV[2], 'name', ARGV[6], 'scopes', ARGV[3], 'create_time', ARGV[4],
  'expire_time', ARGV[5], 'creator', ARGV[7], 'hash', ARGV[8])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return 1`)

func (s *Store) register(ctx context.Context, tenantID string, k NewKey, spec KeySpec) error {
	if err := ValidateScopes(spec.Scopes); err != nil {
		return err
	}
	hash := hashSecret(k.Secret)
	err := registerScript.Run(ctx, s.rdb,
		[]string{tenantKey(tenantID), apiKeyKey(hash), keyRecordKey(k.ID), tenantKeysKey(tenantID)},
		k.ID, tenantID, strings.Join(spec.Scopes, " "), formatMillis(s.now()), formatMillis(spec.ExpireTime),
		spec.DisplayName, spec.CreatorKeyID, hash).Err()
	if err != nil && strings.Contains(err.Error(), "TENANT_NOT_FOUND") {
		return fmt.Errorf("%w: %s", ErrTenantNotFound, tenantID)
	}
	return err
}

// Key returns a key of the tenant; ErrKeyNotFound when the tenant has no such key.
func (s *Store) Key(ctx context.Context, tenantID, id string) (KeyInfo, error) {
	m, err := s.rdb.HGetAll(ctx, keyRecordKey(id)).Result()
	if err != nil {
		return KeyInfo{}, err
	}
	if m["tenant"] == "" || m["tenant"] != tenantID {
		return KeyInfo{}, ErrKeyNotFound
	}
	return keyInfo(id, m), nil
}

func keyInfo(id string, m map[string]string) KeyInfo {
	return KeyInfo{
		ID: id, TenantID: m["tenant"], DisplayName: m["name"], CreatorKeyID: m["creator"],
		Scopes:     strings.Fields(m["scopes"]),
		CreateTime: parseMillis(m["create_time"]), ExpireTime: parseMillis(m["expire_time"]),
		LastUsedTime: parseMillis(m["last_used"]), RevokeTime: parseMillis(m["revoke_time"]),
		PreviousSecretExpireTime: parseMillis(m["prev_expire"]),
	}
}

// ListKeys returns a page of the tenant's keys, newest first, after the cursor after ("" for the
// first page), and the cursor of the next page ("" on the last).
func (s *Store) ListKeys(ctx context.Context, tenantID, after string, limit int) ([]KeyInfo, string, error) {
	start := "+"
	if after != "" {
		start = "(" + after
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: tenantKeysKey(tenantID), Start: start, Stop: "-", ByLex: true, Rev: true, Count: int64(limit + 1),
	}).Result()
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > limit {
		ids, next = ids[:limit], ids[limit-1]
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, keyRecordKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, "", err
		}
	}
	keys := make([]KeyInfo, 0, len(ids))
	for i, c := range cmds {
		if m := c.Val(); m["tenant"] == tenantID {
			keys = append(keys, keyInfo(ids[i], m))
		}
	}
	return keys, next, nil
}

// changeKey runs a script over a key's record and its current and previous secrets, read first;
// the script refuses (CONFLICT) when they changed in between, and the change is tried again.
func (s *Store) changeKey(ctx context.Context, tenantID, id string, script *redis.Script, extraKeys []string, args ...any) (KeyInfo, error) {
	for range 10 {
		v, err := s.rdb.HMGet(ctx, keyRecordKey(id), "tenant", "hash", "prev_hash").Result()
		if err != nil {
			return KeyInfo{}, err
		}
		tenant, _ := v[0].(string)
		hash, _ := v[1].(string)
		prev, _ := v[2].(string)
		if tenant == "" || tenant != tenantID {
			return KeyInfo{}, ErrKeyNotFound
		}
		keys := append([]string{keyRecordKey(id), secretKeyOrNone(hash), secretKeyOrNone(prev)}, extraKeys...)
		err = script.Run(ctx, s.rdb, keys, append([]any{hash, prev, formatMillis(s.now()), id}, args...)...).Err()
		switch {
		case err != nil && strings.Contains(err.Error(), "CONFLICT"):
			continue
		case err != nil && strings.Contains(err.Error(), "REVOKED"):
			return KeyInfo{}, ErrKeyRevoked
		case err != nil:
			return KeyInfo{}, err
		}
		return s.Key(ctx, tenantID, id)
	}
	return KeyInfo{}, errors.New("auth: the key kept changing; retry")
}

// The scripts' common head: ARGV[1..4] are the hash and previous hash read, now and the key id.
const changeHead = `
local v = redis.call('HMGET', KEYS[1], 'hash', 'prev_hash', 'revoke_time')
if (v[1] or '') ~= ARGV[1] or (v[2] or '') ~= ARGV[2] then return redis.error_reply('CONFLICT') end
`

var revokeScript = redis.NewScript(changeHead + `
if (v[3] or '') ~= '' then return 0 end
if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end
if ARGV[2] ~= '' then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[1], 'revoke_time', ARGV[3], 'prev_hash', '', 'prev_expire', '')
redis.call('PUBLISH', '` + KeysChanged + `', ARGV[4])
return 1`)

// RevokeKey revokes a key of the tenant: its secrets stop working at once, on every process
// within a second (KeysChanged). Revoking a revoked key changes nothing.
func (s *Store) RevokeKey(ctx context.Context, tenantID, id string) (KeyInfo, error) {
	return s.changeKey(ctx, tenantID, id, revokeScript, nil)
}

// KEYS[4] is the new secret's key; ARGV[5..] the new hash, the old secret's end (ms, "" for at
// once), the tenant, the scopes, and the key's expiry (ms or "").
var rotateScript = redis.NewScript(changeHead + `
if (v[3] or '') ~= '' then return redis.error_reply('REVOKED') end
if ARGV[2] ~= '' then redis.call('DEL', KEYS[3]) end
redis.call('HSET', KEYS[4], 'id', ARGV[4], 'tenant', ARGV[7], 'scopes', ARGV[8], 'create_time', ARGV[3])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[4], 'not_after', ARGV[9])
  redis.call('PEXPIREAT', KEYS[4], ARGV[9])
end
if ARGV[6] ~= '' and ARGV[1] ~= '' then
  redis.call('HSET', KEYS[2], 'not_after', ARGV[6])
  redis.call('PEXPIREAT', KEYS[2], ARGV[6])
  redis.call('HSET', KEYS[1], 'prev_hash', ARGV[1], 'prev_expire', ARGV[6])
else
  if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end
  redis.call('HSET', KEYS[1], 'prev_hash', '', 'prev_expire', '')
end
redis.call('HSET', KEYS[1], 'hash', ARGV[5])
redis.call('PUBLISH', '` + KeysChanged + `', ARGV[4])
return 1`)

// RotateKey gives a key a new secret; the current one keeps working for overlap (and no longer
// than the key's expiry), a secret from an earlier rotation stops at once.
func (s *Store) RotateKey(ctx context.Context, tenantID, id string, overlap time.Duration) (KeyInfo, string, error) {
	k, err := s.Key(ctx, tenantID, id)
	if err != nil {
		return KeyInfo{}, "", err
	}
	if !k.RevokeTime.IsZero() {
		return KeyInfo{}, "", ErrKeyRevoked
	}
	secret := newSecret()
	hash := hashSecret(secret)
	oldEnd := time.Time{}
	if overlap > 0 {
		oldEnd = s.now().Add(overlap)
		if !k.ExpireTime.IsZero() && k.ExpireTime.Before(oldEnd) {
			oldEnd = k.ExpireTime
		}
	}
	info, err := s.changeKey(ctx, tenantID, id, rotateScript, []string{apiKeyKey(hash)},
		hash, formatMillis(oldEnd), tenantID, strings.Join(k.Scopes, " "), formatMillis(k.ExpireTime))
	return info, secret, err
}

var markUsedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used', ARGV[1]) end
return 1`)

// MarkUsed records when keys were last used, in one pipeline; keys without a record (made before
// keys had one) are left alone.
func (s *Store) MarkUsed(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for id, at := range used {
		markUsedScript.Eval(ctx, pipe, []string{keyRecordKey(id)}, formatMillis(at))
	}
	_, err := pipe.Exec(ctx)
	return err
}
