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
//	                                        previous secret hashes, each previous one's end)
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
	RevokeTime                              time.Time
	// PreviousSecretExpireTime is when the last of the previous secrets still working (after
	// rotations with overlap) stops; zero when none does.
	PreviousSecretExpireTime time.Time
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
		PreviousSecretExpireTime: lastEnd(m["prev_expire"]),
	}
}

// lastEnd is the latest of a record's previous secrets' ends: when the last of them stops working.
func lastEnd(ends string) time.Time {
	var last time.Time
	for _, e := range strings.Fields(ends) {
		if t := parseMillis(e); t.After(last) {
			last = t
		}
	}
	return last
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

// MaxPreviousSecrets bounds a key's previous secrets still working after rotations: each keeps
// the overlap it was given (a second rotation does not end the first one's), and a rotation with
// an overlap that would keep more is refused (ErrTooManySecrets).
const MaxPreviousSecrets = 2

// ErrTooManySecrets is a rotation refused because MaxPreviousSecrets previous secrets still work.
type ErrTooManySecrets struct {
	// Until is when the first of them stops working, and a rotation with overlap is taken again.
	Until time.Time
}

func (e *ErrTooManySecrets) Error() string {
	return fmt.Sprintf("auth: %d previous secrets still work, the first until %s", MaxPreviousSecrets, e.Until.Format(time.RFC3339))
}

// changeKey runs a script over a key's record, its current and previous secrets (read first) and
// extra (a new secret's key, or none); the script refuses (CONFLICT) when they changed in
// between, and the change is tried again. changed is what the script returned (1: it wrote).
func (s *Store) changeKey(ctx context.Context, tenantID, id string, script *redis.Script, extra string, args ...any) (info KeyInfo, changed bool, err error) {
	for range 10 {
		v, err := s.rdb.HMGet(ctx, keyRecordKey(id), "tenant", "hash", "prev_hash").Result()
		if err != nil {
			return KeyInfo{}, false, err
		}
		tenant, _ := v[0].(string)
		hash, _ := v[1].(string)
		prev, _ := v[2].(string)
		if tenant == "" || tenant != tenantID {
			return KeyInfo{}, false, ErrKeyNotFound
		}
		keys := []string{keyRecordKey(id), secretKeyOrNone(hash), secretKeyOrNone(extra)}
		for _, h := range strings.Fields(prev) {
			keys = append(keys, apiKeyKey(h))
		}
		res, err := script.Run(ctx, s.rdb, keys, append([]any{hash, prev, formatMillis(s.now()), id}, args...)...).Int()
		switch {
		case err != nil && strings.Contains(err.Error(), "CONFLICT"):
			continue
		case err != nil && strings.Contains(err.Error(), "REVOKED"):
			return KeyInfo{}, false, ErrKeyRevoked
		case err != nil && strings.Contains(err.Error(), "TOO_MANY"):
			_, until, _ := strings.Cut(err.Error(), "TOO_MANY ")
			return KeyInfo{}, false, &ErrTooManySecrets{Until: parseMillis(until)}
		case err != nil:
			return KeyInfo{}, false, err
		}
		info, err := s.Key(ctx, tenantID, id)
		return info, res == 1, err
	}
	return KeyInfo{}, false, errors.New("auth: the key kept changing; retry")
}

// The scripts' common head: KEYS are the record, the current secret, a new secret (or none) and
// the previous secrets (KEYS[4..]); ARGV[1..4] are the hash and previous hashes read, now and the
// key id. The record keeps the previous secrets as two space-separated lists in step: prev_hash
// and prev_expire (when each stops working, ms).
const changeHead = `
local v = redis.call('HMGET', KEYS[1], 'hash', 'prev_hash', 'revoke_time', 'prev_expire')
if (v[1] or '') ~= ARGV[1] or (v[2] or '') ~= ARGV[2] then return redis.error_reply('CONFLICT') end
`

var revokeScript = redis.NewScript(changeHead + `
if (v[3] or '') ~= '' then return 0 end
if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('HSET', KEYS[1], 'revoke_time', ARGV[3], 'prev_hash', '', 'prev_expire', '')
redis.call('PUBLISH', '` + KeysChanged + `', ARGV[4])
return 1`)

// RevokeKey revokes a key of the tenant: its secrets stop working at once, on every process
// within a second (KeysChanged). Revoking a revoked key changes nothing: changed is false.
func (s *Store) RevokeKey(ctx context.Context, tenantID, id string) (info KeyInfo, changed bool, err error) {
	return s.changeKey(ctx, tenantID, id, revokeScript, "")
}

// KEYS[3] is the new secret's key; ARGV[5..] the new hash, the current secret's end (ms, "" for
// at once), the tenant, the scopes, the key's expiry (ms or "") and MaxPreviousSecrets. Previous
// secrets still working keep their own end; those ended are dropped from the record.
var rotateScript = redis.NewScript(changeHead + `
if (v[3] or '') ~= '' then return redis.error_reply('REVOKED') end
local ends, hashes, kept, first, firstEnd = {}, {}, {}, nil, ''
for e in string.gmatch(v[4] or '', '%S+') do table.insert(ends, e) end
local overlap = ARGV[6] ~= '' and ARGV[1] ~= ''
local i = 0
for h in string.gmatch(ARGV[2], '%S+') do
  i = i + 1
  local e = tonumber(ends[i] or '') or 0
  if not overlap then e = 0 end
  if e > tonumber(ARGV[3]) then
    table.insert(hashes, h)
    table.insert(kept, ends[i])
    if first == nil or e < first then first, firstEnd = e, ends[i] end
  end
end
if overlap and #hashes >= tonumber(ARGV[10]) then return redis.error_reply('TOO_MANY ' .. firstEnd) end
i = 0
for h in string.gmatch(ARGV[2], '%S+') do
  i = i + 1
  if not overlap or not ((tonumber(ends[i] or '') or 0) > tonumber(ARGV[3])) then redis.call('DEL', KEYS[3 + i]) end
end
redis.call('HSET', KEYS[3], 'id', ARGV[4], 'tenant', ARGV[7], 'scopes', ARGV[8], 'create_time', ARGV[3])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[3], 'not_after', ARGV[9])
  redis.call('PEXPIREAT', KEYS[3], ARGV[9])
end
if overlap then
  redis.call('HSET', KEYS[2], 'not_after', ARGV[6])
  redis.call('PEXPIREAT', KEYS[2], ARGV[6])
  table.insert(hashes, ARGV[1])
  table.insert(kept, ARGV[6])
elseif ARGV[1] ~= '' then
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'hash', ARGV[5], 'prev_hash', table.concat(hashes, ' '), 'prev_expire', table.concat(kept, ' '))
redis.call('PUBLISH', '` + KeysChanged + `', ARGV[4])
return 1`)

// RotateKey gives a key a new secret; the current one keeps working for overlap (and no longer
// than the key's expiry), and the secrets of earlier rotations for the overlaps they were given.
// With overlap, a rotation that would keep more than MaxPreviousSecrets working is refused
// (*ErrTooManySecrets); without, it always succeeds and only the new secret works from then on:
// the current one and those of earlier rotations stop at once (the way to shut out a leaked one).
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
	info, _, err := s.changeKey(ctx, tenantID, id, rotateScript, hash,
		hash, formatMillis(oldEnd), tenantID, strings.Join(k.Scopes, " "), formatMillis(k.ExpireTime), MaxPreviousSecrets)
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
