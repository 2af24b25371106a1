// Package pagetoken makes opaque, signed page tokens. A token is bound to the request it continues
// (tenant, method, filter), so a forged, altered or foreign token is rejected as INVALID_ARGUMENT.
package pagetoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/redisconn"
)

// KeyName is where the signing key lives, shared by every process of the deployment.
const KeyName = "crm:meta:pagetoken-key"

const macSize = 16

// ErrInvalid is the error for a token that was not made for this request.
var ErrInvalid = apierr.Invalid("page_token", "not a token this list call issued; start again without it")

// Codec signs and verifies tokens.
type Codec struct{ key []byte }

// Load returns the deployment's codec, creating its random key on first start.
func Load(ctx context.Context, rdb redis.UniversalClient) (*Codec, error) {
	key, err := redisconn.SharedKey(ctx, rdb, KeyName)
	if err != nil {
		return nil, fmt.Errorf("pagetoken: %w", err)
	}
	return New(key), nil
}

// New returns a codec with the given key.
func New(key []byte) *Codec { return &Codec{key: key} }

// Encode returns a token carrying cursor, bound to binding.
func (c *Codec) Encode(binding, cursor string) string {
	b := append([]byte(cursor), c.mac(binding, cursor)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the cursor of a token made by Encode with the same binding.
func (c *Codec) Decode(binding, token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < macSize {
		return "", ErrInvalid
	}
	cursor, mac := string(b[:len(b)-macSize]), b[len(b)-macSize:]
	if !hmac.Equal(mac, c.mac(binding, cursor)) {
		return "", ErrInvalid
	}
	return cursor, nil
}

func (c *Codec) mac(binding, cursor string) []byte {
	h := hmac.New(sha256.New, c.key)
	_, _ = h.Write([]byte(binding))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(cursor))
	return h.Sum(nil)[:macSize]
}

// List is one list request's tokens: a token continues exactly the list it came from (same
// tenant, method and filter or parent).
type List struct {
	codec   *Codec
	binding string
}

// List binds tokens to one list request.
func (c *Codec) List(tenant, method, filter string) List {
	return List{codec: c, binding: tenant + "\x00" + method + "\x00" + filter}
}

// Cursor returns the cursor a request's page token carries; "" (the first page) for no token.
func (l List) Cursor(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	return l.codec.Decode(l.binding, token)
}

// Token returns the token that continues after next; "" when there is no next page.
func (l List) Token(next string) string {
	if next == "" {
		return ""
	}
	return l.codec.Encode(l.binding, next)
}
