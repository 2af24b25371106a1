package importer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A list column (a lead's tags, a product's features) holds its items separated by ";", each
// trimmed, empty ones dropped. An item may hold any text all the same: a "\" makes the character
// after it part of the item when that is ";", "\" or whitespace (kept at an item's end); before any
// other character a "\" is itself, so a hand-written C:\dir reads as it looks. JoinList writes
// only what SplitList reads back exactly, so a CSV export imports back unchanged.

// JoinList is the text of a list column holding items.
func JoinList(items []string) string {
	var b strings.Builder
	for i, item := range items {
		if i > 0 {
			b.WriteByte(';')
		}
		// Whitespace before the first other character and after the last is escaped.
		lead := len(item) - len(strings.TrimLeftFunc(item, unicode.IsSpace))
		trail := len(strings.TrimRightFunc(item, unicode.IsSpace))
		for at, r := range item {
			if r == ';' || r == '\\' || unicode.IsSpace(r) && (at < lead || at >= trail) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SplitList reads the items of a list column's text.
func SplitList(s string) []string {
	var out []string
	var item strings.Builder
	space := "" // unescaped whitespace after the item's last character: kept only if more follows
	add := func(r rune) {
		item.WriteString(space)
		space = ""
		item.WriteRune(r)
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\\' && i < len(s):
			next, m := utf8.DecodeRuneInString(s[i:])
			if next == ';' || next == '\\' || unicode.IsSpace(next) {
				r, i = next, i+m
			}
			add(r)
		case r == ';':
			if item.Len() > 0 {
				out = append(out, item.String())
			}
			item.Reset()
			space = ""
		case unicode.IsSpace(r):
			if item.Len() > 0 {
				space += string(r)
			}
		default:
			add(r)
		}
	}
	if item.Len() > 0 {
		out = append(out, item.String())
	}
	return out
}
