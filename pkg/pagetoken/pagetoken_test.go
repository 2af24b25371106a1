package pagetoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func newCodec(t *testing.T) *pagetoken.Codec {
	t.Helper()
	return pagetoken.New(bytes.Repeat([]byte{7}, 32))
}

func TestRoundTrip(t *testing.T) {
	c := newCodec(t)
	tests := []struct {
		name, binding, cursor string
	}{
		{"simple", "acme/ListLeads/status=NEW", "1700000000123:0190a1b2-0000-7000-8000-000000000001"},
		{"empty cursor", "acme/ListLeads/", ""},
		{"empty binding", "", "cursor"},
		{"binary cursor", "acme/ListOrders/", "\x00\xff\x01:{}"},
		{"long cursor", "acme/ListLeads/", strings.Repeat("c", 400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := c.Encode(tt.binding, tt.cursor)
			got, err := c.Decode(tt.binding, token)
			if err != nil {
				t.Fatalf("Decode: got %v, want no error", err)
			}
			if got != tt.cursor {
				t.Errorf("cursor: got %q, want %q", got, tt.cursor)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	c := newCodec(t)
	const binding, cursor = "acme/ListLeads/status=NEW", "1700000000123:lead-1"
	valid := c.Encode(binding, cursor)
	raw, err := base64.RawURLEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name    string
		codec   *pagetoken.Codec
		binding string
		token   string
	}{
		{"cursor byte altered", c, binding, flip(0)},
		{"last cursor byte altered", c, binding, flip(len(cursor) - 1)},
		{"mac byte altered", c, binding, flip(len(raw) - 1)},
		{"cursor replaced", c, binding, base64.RawURLEncoding.EncodeToString(append([]byte("9999999999999:lead-9"), raw[len(cursor):]...))},
		{"another tenant", c, "globex/ListLeads/status=NEW", valid},
		{"another filter", c, "acme/ListLeads/status=ENGAGED", valid},
		{"another method", c, "acme/ListCampaigns/status=NEW", valid},
		{"another deployment's key", pagetoken.New(bytes.Repeat([]byte{8}, 32)), binding, valid},
		{"garbage base64", c, binding, "!!!not base64!!!"},
		{"padded base64", c, binding, base64.URLEncoding.EncodeToString(raw) + "=="},
		{"standard alphabet", c, binding, strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/"},
		{"empty token", c, binding, ""},
		{"too short", c, binding, base64.RawURLEncoding.EncodeToString(raw[:15])},
		{"mac only, truncated", c, binding, base64.RawURLEncoding.EncodeToString(raw[len(raw)-15:])},
		{"cursor dropped", c, binding, base64.RawURLEncoding.EncodeToString(raw[len(cursor):])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.codec.Decode(tt.binding, tt.token)
			if err == nil {
				t.Fatalf("Decode(%q): got cursor %q, want an error", tt.token, got)
			}
			if got != "" {
				t.Errorf("cursor with error: got %q, want empty", got)
			}
			e, ok := apierr.As(err)
			if !ok {
				t.Fatalf("error: got %T %v, want *apierr.Error", err, err)
			}
			if e.Kind != apierr.InvalidArgument {
				t.Errorf("kind: got %v, want %v", e.Kind, apierr.InvalidArgument)
			}
			if len(e.Fields) != 1 || e.Fields[0].Field != "page_token" {
				t.Errorf("fields: got %+v, want one violation of page_token", e.Fields)
			}
		})
	}
}

func TestLoadSharesTheKey(t *testing.T) {
	ctx := context.Background()
	// Two processes of one deployment: separate clients, one Redis.
	a, err := pagetoken.Load(ctx, redistest.Client(t))
	if err != nil {
		t.Fatalf("first Load: %v", err)
	}
	b, err := pagetoken.Load(ctx, redistest.Client(t))
	if err != nil {
		t.Fatalf("second Load: %v", err)
	}
	const binding, cursor = "acme/ListLeads/", "c1"
	for _, tc := range []struct {
		name     string
		enc, dec *pagetoken.Codec
	}{{"a to b", a, b}, {"b to a", b, a}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.dec.Decode(binding, tc.enc.Encode(binding, cursor))
			if err != nil || got != cursor {
				t.Errorf("Decode: got %q, %v, want %q, nil", got, err, cursor)
			}
		})
	}

	key, err := redistest.Client(t).Get(ctx, pagetoken.KeyName).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Errorf("stored key length: got %d, want 32", len(key))
	}
	if bytes.Equal(key, make([]byte, 32)) {
		t.Errorf("stored key is all zeros")
	}
	if got, err := pagetoken.New(key).Decode(binding, a.Encode(binding, cursor)); err != nil || got != cursor {
		t.Errorf("codec of the stored key: got %q, %v, want %q, nil", got, err, cursor)
	}
}

func TestListBindsTenantMethodAndFilter(t *testing.T) {
	c := newCodec(t)
	list := c.List("t1", "ListLeads", `status = "NEW"`)
	if got, err := list.Cursor(""); got != "" || err != nil {
		t.Fatalf("no token: cursor %q, %v; want the first page", got, err)
	}
	if tok := list.Token(""); tok != "" {
		t.Fatalf("no next page gave token %q, want none", tok)
	}
	tok := list.Token("cursor-42")
	if got, err := list.Cursor(tok); got != "cursor-42" || err != nil {
		t.Fatalf("round trip: %q, %v; want cursor-42", got, err)
	}
	for name, other := range map[string]pagetoken.List{
		"other tenant": c.List("t2", "ListLeads", `status = "NEW"`),
		"other method": c.List("t1", "ListCampaigns", `status = "NEW"`),
		"other filter": c.List("t1", "ListLeads", `status = "ENGAGED"`),
	} {
		if _, err := other.Cursor(tok); err != pagetoken.ErrInvalid {
			t.Errorf("%s accepted the token: %v", name, err)
		}
	}
}
