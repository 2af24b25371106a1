package etag_test

import (
	"errors"
	"testing"

	"github.com/crmcycle/crm/pkg/etag"
)

func TestNext(t *testing.T) {
	for in, want := range map[string]string{"": "1", "0": "1", etag.First: "2", "41": "42", "18446744073709551614": "18446744073709551615"} {
		if got := etag.Next(in); got != want {
			t.Errorf("Next(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	stale := errors.New("stale")
	for _, c := range []struct {
		requested, stored string
		want              error
	}{
		{"", "3", nil}, {"3", "3", nil}, {"2", "3", stale}, {"03", "3", stale},
	} {
		if got := etag.Check(c.requested, c.stored, stale); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.requested, c.stored, got, c.want)
		}
	}
}
