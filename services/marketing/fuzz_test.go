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

// FuzzParseLeadList: a filter and order either name an index or are INVALID_ARGUMENT, never a panic.
func FuzzParseLeadList(f *testing.F) {
	for _, s := range []string{"", "status = LEAD_STATUS_NEW", `channel="CHANNEL_WEB"`, "score > 3 AND score <= 9", "status = 1", `tags:"a b"`} {
		f.Add(s, "")
		f.Add(s, "score desc")
	}
	f.Fuzz(func(t *testing.T, filter, orderBy string) {
		if _, err := marketing.ParseLeadList(filter, orderBy); err != nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument {
				t.Fatalf("ParseLeadList(%q, %q): %v is not INVALID_ARGUMENT", filter, orderBy, err)
			}
		}
	})
}
