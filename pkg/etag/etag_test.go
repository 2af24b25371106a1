package etag_test

import (
	"errors"
	"slices"
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

func TestRetry(t *testing.T) {
	stale, busy, other := errors.New("stale"), errors.New("busy"), errors.New("other")
	for _, c := range []struct {
		name     string
		outcomes []error // what each try answers; past the end, success
		want     error
		tries    int
	}{
		{"first try", nil, nil, 1},
		{"after two lost races", []error{stale, stale}, nil, 3},
		{"another error ends it", []error{stale, other}, other, 2},
		{"contention after the last try", slices.Repeat([]error{stale}, etag.Attempts), busy, etag.Attempts},
	} {
		t.Run(c.name, func(t *testing.T) {
			tries := 0
			v, err := etag.Retry(stale, busy, func() (int, error) {
				tries++
				if tries <= len(c.outcomes) {
					return -1, c.outcomes[tries-1]
				}
				return tries, nil
			})
			if !errors.Is(err, c.want) || tries != c.tries || (err == nil && v != tries) {
				t.Errorf("Retry: %d, %v after %d tries, want %v after %d", v, err, tries, c.want, c.tries)
			}
		})
	}
}
