package marketing_test

import (
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/services/marketing"
)

// FuzzNormalizeEmail: any input is either rejected as INVALID_ARGUMENT or becomes a trimmed,
// lower-case address that normalizes to itself.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", " Ada@Example.COM ", "a@b", "\"a b\"@example.com", "<a@example.com>", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email, err := marketing.NormalizeEmail(raw)
		if err != nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument {
				t.Fatalf("NormalizeEmail(%q): %v is not INVALID_ARGUMENT", raw, err)
			}
			return
		}
		if email != strings.ToLower(strings.TrimSpace(email)) {
			t.Fatalf("NormalizeEmail(%q) = %q, not trimmed and lower case", raw, email)
		}
		if again, err := marketing.NormalizeEmail(email); err != nil || again != email {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q, %v", email, again, err)
		}
	})
}

// FuzzParseLeadFilter: a filter either names an index or is INVALID_ARGUMENT, never a panic.
func FuzzParseLeadFilter(f *testing.F) {
	for _, s := range []string{"", "status = LEAD_STATUS_NEW", `channel="CHANNEL_WEB"`, "score > 3", "status = 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		if _, err := marketing.ParseLeadFilter(filter); err != nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument {
				t.Fatalf("ParseLeadFilter(%q): %v is not INVALID_ARGUMENT", filter, err)
			}
		}
	})
}
