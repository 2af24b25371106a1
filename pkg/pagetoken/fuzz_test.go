package pagetoken_test

import (
	"testing"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/pagetoken"
)

// FuzzDecode: whatever a client sends as a token, Decode answers with a cursor it signed or with
// INVALID_ARGUMENT, never a panic; and every token it makes decodes back.
func FuzzDecode(f *testing.F) {
	codec := pagetoken.New([]byte("fuzz-key-0123456789abcdef0123456"))
	f.Add("t1\x00ListLeads\x00", codec.Encode("t1\x00ListLeads\x00", "01a20b45-2a28-7f41-b702-1121b1b3b663"))
	f.Add("", "")
	f.Add("b", "AAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("b", "%%%not base64")
	f.Fuzz(func(t *testing.T, binding, token string) {
		cursor, err := codec.Decode(binding, token)
		if err != nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument {
				t.Fatalf("Decode(%q) error %v is not INVALID_ARGUMENT", token, err)
			}
			return
		}
		if codec.Encode(binding, cursor) != token {
			t.Fatalf("accepted token %q does not re-encode from its cursor %q", token, cursor)
		}
	})
}
