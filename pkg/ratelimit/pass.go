package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redisconn"
)

// PassHeader is the gRPC metadata that marks a call one service makes to another on behalf of a
// client the first service already admitted: the callee does not charge the client again.
const PassHeader = "x-crm-admitted"

// passKeyName holds the deployment's pass key; every process shares it through Redis, which
// clients cannot read, so they cannot make a pass.
const passKeyName = "crm:meta:ratelimit-pass-key"

// passTTL bounds how long a pass is good for: longer than any call chain's deadline, short enough
// that one seen in a log is soon useless.
const passTTL = time.Minute

// Pass signs and checks the "already admitted" mark: an HMAC over the principal (tenant and key)
// and an expiry, so it cannot be forged, moved to another key or kept.
type Pass struct {
	key []byte
	now func() time.Time
}

// LoadPass returns the deployment's pass, creating its key on first use.
func LoadPass(ctx context.Context, rdb redis.UniversalClient) (*Pass, error) {
	key, err := redisconn.SharedKey(ctx, rdb, passKeyName)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	return &Pass{key: key, now: time.Now}, nil
}

// Stamp marks an outgoing call made while serving an admitted client (ctx carries its
// principal); other calls go out unmarked.
func (p *Pass) Stamp(ctx context.Context) context.Context {
	principal, ok := auth.FromContext(ctx)
	if !ok {
		return ctx
	}
	expiry := strconv.FormatInt(p.now().Add(passTTL).Unix(), 10)
	return metadata.AppendToOutgoingContext(ctx, PassHeader, expiry+"."+p.mac(principal, expiry))
}

// admitted reports whether the incoming call carries a valid pass for principal.
func (p *Pass) admitted(ctx context.Context, principal auth.Principal) bool {
	for _, v := range metadata.ValueFromIncomingContext(ctx, PassHeader) {
		expiry, mac, ok := strings.Cut(v, ".")
		unix, err := strconv.ParseInt(expiry, 10, 64)
		if !ok || err != nil || p.now().Unix() > unix {
			continue
		}
		if hmac.Equal([]byte(mac), []byte(p.mac(principal, expiry))) {
			return true
		}
	}
	return false
}

func (p *Pass) mac(principal auth.Principal, expiry string) string {
	h := hmac.New(sha256.New, p.key)
	h.Write([]byte(principal.TenantID + "\x00" + principal.KeyID + "\x00" + expiry))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
