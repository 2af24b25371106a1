package search

import (
	"slices"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ada Lovelace", "ada lovelace"},
		{"  ÉLODIE   d'Arçy ", "elodie d arcy"},
		{"Straße", "strasse"},
		{"ＡＣＭＥ Corp.", "acme corp"},
		{"SKU-00042/b", "sku 00042 b"},
		{"Zoë Ångström", "zoe angstrom"},
		{"---", ""},
		{"", ""},
	} {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMembersAndMatch(t *testing.T) {
	got := Members("id1", "Ada Lovelace", "Acme Ada")
	want := []string{"ada lovelace\x00id1", "lovelace\x00id1", "acme ada\x00id1", "ada\x00id1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Members = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		query, member string
		ok            bool
	}{
		{"ADA", "ada lovelace\x00id1", true}, // the first member that matches, not "ada"
		{"lové", "lovelace\x00id1", true},
		{"acme a", "acme ada\x00id1", true},
		{"ada lovelace x", "", false},
		{"byron", "", false},
	} {
		p, _ := NewPrefix(tc.query)
		member, ok := p.Match("id1", "Ada Lovelace", "Acme Ada")
		if member != tc.member || ok != tc.ok {
			t.Errorf("Match(%q) = %q %v, want %q %v", tc.query, member, ok, tc.member, tc.ok)
		}
		if !ok {
			continue
		}
		lo, hi := p.Range()
		if m := member; !(m >= lo[1:] && m < hi[1:]) {
			t.Errorf("member %q is outside the range [%q, %q)", m, lo, hi)
		}
	}
	if ID("ada lovelace\x00id1") != "id1" {
		t.Errorf("ID of a member")
	}
}

func TestLongTextsAreCut(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes in UTF-8, 40 after folding
	name := long + " " + strings.Repeat("b", 60)
	ms := Members("x", name)
	if len(ms) != 2 {
		t.Fatalf("members %q", ms)
	}
	for _, m := range ms {
		if text := m[:len(m)-2]; len(text) > maxKey {
			t.Errorf("member text %d bytes, want at most %d", len(text), maxKey)
		}
	}
	p, _ := NewPrefix(strings.Repeat("E", 40) + " " + strings.Repeat("B", 59))
	if member, ok := p.Match("x", name); !ok || member != ms[0] {
		t.Errorf("a prefix longer than a member's text matches through it: %q %v", member, ok)
	}
	if _, ok := NewPrefix(" *- "); ok {
		t.Errorf("a prefix with nothing searchable is refused")
	}
	if len(Members("x", "a b c d e f")) != maxWords {
		t.Errorf("a text gives at most %d members", maxWords)
	}
}

// The ASCII shortcut of Fold gives what the full decomposition and case fold give.
func TestFoldOfASCIIIsTheFullFold(t *testing.T) {
	var all strings.Builder
	for c := range 128 {
		all.WriteByte(byte(c))
		s := string(rune(c))
		if got, want := Fold(s), words(decomposeFold(s)); got != want {
			t.Errorf("Fold(%q) = %q, want %q", s, got, want)
		}
	}
	for _, s := range []string{all.String(), "Ada LOVELACE-Byron", "SKU-00042/B", "O'Neil & Sons, Ltd.", "KELVIN kelvin"} {
		if got, want := Fold(s), words(decomposeFold(s)); got != want {
			t.Errorf("Fold(%q) = %q, want %q", s, got, want)
		}
	}
}
