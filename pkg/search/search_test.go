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

// Letters that NFKD leaves whole are found by their plain spelling too, and by themselves; a
// name matches a query when the query's range holds one of its members and Match names that one.
func TestPlainLetters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Saldaña-Øster", "saldana oster"},
		{"Łukasz ŁUKASZ", "lukasz lukasz"},
		{"Ærø Shipping", "aero shipping"},
		{"ŒUVRE Œuvre", "oeuvre oeuvre"},
		{"Þór Ðóra", "thor dora"},
		{"Đorđe Ħamrun", "dorde hamrun"},
		{"Iıl ĸŧ", "iil kt"},
		{"Straße STRASSE", "strasse strasse"},
		{"ﬁnn", "finn"},
		{"Coŀlegi", "col legi"}, // NFKD splits ŀ into l and a middle dot
	} {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	names := []string{"Saldaña-Øster", "Łukasz Wójcik", "Ærø Shipping", "Œuvre Þórsson", "Ada Lovelace", "Straße 9"}
	for _, tc := range []struct {
		query string
		want  []string // the names the query finds
	}{
		{"oster", []string{"Saldaña-Øster"}},
		{"ØSTER", []string{"Saldaña-Øster"}},
		{"saldana o", []string{"Saldaña-Øster"}},
		{"saldaña ø", []string{"Saldaña-Øster"}},
		{"oe", []string{"Œuvre Þórsson"}},
		{"lukasz", []string{"Łukasz Wójcik"}},
		{"łuk", []string{"Łukasz Wójcik"}},
		{"wojcik", []string{"Łukasz Wójcik"}},
		{"aero", []string{"Ærø Shipping"}},
		{"ærø s", []string{"Ærø Shipping"}},
		{"aro", nil},
		{"thorsson", []string{"Œuvre Þórsson"}},
		{"oeuvre th", []string{"Œuvre Þórsson"}},
		{"strasse 9", []string{"Straße 9"}},
		{"a", []string{"Ærø Shipping", "Ada Lovelace"}},
		{"ost", []string{"Saldaña-Øster"}},
		{"oester", nil},
		{"lo", []string{"Ada Lovelace"}},
	} {
		p, ok := NewPrefix(tc.query)
		if !ok {
			t.Fatalf("NewPrefix(%q) refused", tc.query)
		}
		lo, hi := p.Range()
		var got []string
		for _, name := range names {
			for _, m := range Members("id", name) {
				if matched, ok := p.Match("id", name); m >= lo[1:] && m < hi[1:] && ok && matched == m {
					got = append(got, name)
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q finds %q, want %q", tc.query, got, tc.want)
		}
	}
}

// A record written before plain is indexed under its foldV1 members alone (written out here as
// the version before wrote them): it is still found through them, once.
func TestRecordsIndexedBeforePlainAreFoundAsBefore(t *testing.T) {
	name := "Saldaña-Øster"
	old := []string{"saldana øster\x00id", "øster\x00id"}
	if got := Members("id", name); !slices.Equal(got, []string{old[0], "saldana oster\x00id", old[1], "oster\x00id"}) {
		t.Fatalf("Members = %q: want each foldV1 member before its plain one, so a write keeps the old and adds the new", got)
	}
	for _, q := range []string{"saldana", "SALDAÑA", "sal"} {
		p, _ := NewPrefix(q)
		lo, hi := p.Range()
		found := 0
		for _, m := range old {
			if matched, ok := p.Match("id", name); m >= lo[1:] && m < hi[1:] && ok && matched == m {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%q finds the old record through %d of its members, want 1", q, found)
		}
	}
}

// ASCII texts give one member per word start (no second fold) and fold as before.
func TestASCIIHasOneFold(t *testing.T) {
	for _, s := range []string{"Ada Lovelace", "SKU-00042/b", "O'Neil & Sons, Ltd."} {
		if Fold(s) != foldV1(s) || Fold(s) != words(decomposeFold(s)) {
			t.Errorf("Fold(%q) = %q, foldV1 %q", s, Fold(s), foldV1(s))
		}
		if got, want := len(Members("x", s)), len(strings.Fields(Fold(s))); got != min(want, maxWords) {
			t.Errorf("Members(%q): %d, want %d", s, got, want)
		}
	}
}
