package importer

import (
	"slices"
	"testing"
)

// TestListRoundTrip: any items JoinList writes, SplitList reads back exactly; hand-written lists
// read as they did (trimmed, empty items dropped, a backslash before a letter kept).
func TestListRoundTrip(t *testing.T) {
	for _, items := range [][]string{
		{"vip"},
		{"vip", "fr"},
		{"a;b", "c"},
		{`back\slash`, `ends\`, `\`, `\;`, `;`},
		{" lead", "trail ", "\tboth\n", "  ", "in side"},
		{`C:\dir`, "émoji 🎉;ok"},
	} {
		text := JoinList(items)
		if got := SplitList(text); !slices.Equal(got, items) {
			t.Errorf("JoinList(%q) = %q, read back as %q", items, text, got)
		}
	}
	for text, want := range map[string][]string{
		"vip; fr ;;q1": {"vip", "fr", "q1"},
		` C:\dir `:     {`C:\dir`},
		"":             nil,
		"a\\;b":        {"a;b"},
	} {
		if got := SplitList(text); !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q, want %q", text, got, want)
		}
	}
}
