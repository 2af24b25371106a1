// Package search is the one text matching of every list that finds records by a name, a company
// or a SKU: case- and accent-insensitive prefix search at the start of any word, served by a
// sorted-set index whose members all share one score, so a prefix is a lexical range read in
// O(log n + page).
//
// A text is folded (accents dropped, case folded, every run of other than letters and digits one
// space) and indexed once per word start: "Ada Lovelace" is found by "ada*", "love*" and
// "ada lo*". A record is in the index under "<text from a word start>\x00<id>" for each of its
// words, so a prefix can reach it through several members; Match names the one member through
// which a record counts, so a list returns each record once.
package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

const (
	// maxWords bounds the members of one text: a long company name costs no more than four.
	maxWords = 4
	// maxKey bounds the text of one member, in bytes; longer prefixes are narrowed by Match.
	maxKey = 48
)

// sep ends the text of a member; a folded text never holds it, and it sorts below every byte a
// text holds, so "ada\x00..." comes before "ada lovelace\x00...".
const sep = "\x00"

var folder = cases.Fold()

// Fold is the form texts are compared in: decomposed, without combining marks, case folded
// ("Straße" and "STRASSE" are one), with every run of non-letters and non-digits one space, trimmed.
func Fold(s string) string {
	if isASCII(s) {
		// Plain ASCII is its own decomposition, has no marks and folds by lowering its letters,
		// which words does: it skips the transformers, which allocate a few KiB per call.
		return words(s)
	}
	return words(decomposeFold(s))
}

// decomposeFold decomposes s, drops its combining marks and folds its case.
func decomposeFold(s string) string {
	bare, _, err := transform.String(transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn))), s)
	if err != nil {
		bare = s
	}
	return folder.String(bare)
}

// words joins the runs of letters and digits of s with one space, ASCII letters lowered.
func words(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
			space = false
			continue
		}
		space = true
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Members are the index members of a record with id whose searchable field holds texts (given
// and family name, for example): one per word start, in order, without repeats.
func Members(id string, texts ...string) []string {
	var out []string
	for _, start := range starts(texts) {
		m := cut(start) + sep + id
		if !contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// starts are the folded texts from each word start of texts, at most maxWords per text.
func starts(texts []string) []string {
	var out []string
	for _, t := range texts {
		folded := Fold(t)
		for n := 0; folded != "" && n < maxWords; n++ {
			out = append(out, folded)
			_, rest, ok := strings.Cut(folded, " ")
			if !ok {
				break
			}
			folded = rest
		}
	}
	return out
}

// cut shortens a folded text to at most maxKey bytes, on a rune boundary.
func cut(s string) string {
	if len(s) <= maxKey {
		return s
	}
	n := maxKey
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func contains(ms []string, m string) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// Prefix is a folded prefix to search for.
type Prefix string

// NewPrefix folds what a client typed; ok is false when nothing searchable is left.
func NewPrefix(raw string) (Prefix, bool) {
	p := Fold(raw)
	return Prefix(p), p != ""
}

// Range is the lexical range (ZRANGE BYLEX bounds) of the members the prefix can match.
func (p Prefix) Range() (min, max string) {
	key := cut(string(p))
	// No folded text holds 0xFF (it is not UTF-8), so "<key>\xff" is above every member that
	// starts with key.
	return "[" + key, "(" + key + "\xff"
}

// Match is the member through which a record with id and texts matches the prefix: the first of
// its Members whose text starts with the prefix; ok is false when the record does not match (it
// changed since its member was read). A list keeps a record only when it meets it through this
// member, so a record matching at two word starts is listed once.
func (p Prefix) Match(id string, texts ...string) (member string, ok bool) {
	for _, start := range starts(texts) {
		if strings.HasPrefix(start, string(p)) {
			return cut(start) + sep + id, true
		}
	}
	return "", false
}

// ID is the record id of an index member.
func ID(member string) string {
	return member[strings.LastIndex(member, sep)+1:]
}
