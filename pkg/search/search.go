// Package search is the one text matching of every list that finds records by a name, a company
// or a SKU: case- and accent-insensitive prefix search at the start of any word, served by a
// sorted-set index whose members all share one score, so a prefix is a lexical range read in
// O(log n + page).
//
// A text is folded (accents dropped, case folded, the Latin letters without a decomposition such as
// ø, ł and æ spelled plainly, every run of other than letters and digits one space) and indexed
// once per word start: "Ada Lovelace" is found by "ada*", "love*" and "ada lo*". A record is in
// the index under "<text from a word start>\x00<id>" for each of its words, so a prefix can reach
// it through several members; Match names the one member through which a record counts, so a list
// returns each record once.
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

// plain spells the Latin letters that have no decomposition (so NFKD leaves them whole) as the
// letters they are read as, so that "oster*" finds "Øster", "lukasz*" "Łukasz" and "aero*" "Ærø".
// It applies to folded text: only the lower-case forms occur. ß, ﬁ and the like need no entry:
// case folding gives "ss", NFKD "fi"; so does ŀ, which NFKD splits into l and a middle dot.
var plain = strings.NewReplacer(
	"ø", "o", "ł", "l", "đ", "d", "ð", "d", "ħ", "h", "ı", "i", "ĸ", "k", "ŧ", "t",
	"æ", "ae", "œ", "oe", "þ", "th",
)

// Fold is the form texts are compared in: decomposed, without combining marks, case folded
// ("Straße" and "STRASSE" are one), the letters of plain spelled plainly, with every run of
// non-letters and non-digits one space, trimmed.
func Fold(s string) string {
	if isASCII(s) {
		// Plain ASCII is its own decomposition, has no marks and folds by lowering its letters,
		// which words does: it skips the transformers, which allocate a few KiB per call.
		return words(s)
	}
	return plain.Replace(words(decomposeFold(s)))
}

// foldV1 is Fold before plain: records written by the versions before it are indexed under it.
func foldV1(s string) string {
	if isASCII(s) {
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
// and family name, for example): one per word start, in order, without repeats. A word start that
// foldV1 folds otherwise ("øster" for "oster") also gives its foldV1 member, first: records written
// before plain are indexed under it alone and stay found through it as before (Match), and a
// rename or an erase, which removes the Members of the old text, removes both. A record is indexed
// under the plain spelling when its text is written by this version: at once for a new record or a
// rename; one written before and not renamed since keeps its foldV1 members alone (a write that
// leaves the text as it was changes no member).
func Members(id string, texts ...string) []string {
	var out []string
	for _, st := range starts(texts) {
		for _, text := range st.texts() {
			if m := cut(text) + sep + id; text != "" && !contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// start is one word start of a text, folded by Fold and by foldV1.
type start struct{ folded, v1 string }

// texts are the texts a start is indexed under, "" for none: its foldV1 text first when it
// differs. An array, so that the ASCII path allocates nothing for it.
func (s start) texts() [2]string {
	if s.v1 != s.folded {
		return [2]string{s.v1, s.folded}
	}
	return [2]string{s.folded}
}

// starts are the texts from each word start of texts, at most maxWords per text. plain maps
// letters to letters, so both folds of a text have the same words.
func starts(texts []string) []start {
	var out []start
	for _, t := range texts {
		v1, ascii := foldV1(t), isASCII(t)
		for n := 0; v1 != "" && n < maxWords; n++ {
			st := start{folded: v1, v1: v1}
			if !ascii {
				st.folded = plain.Replace(v1)
			}
			out = append(out, st)
			_, rest, ok := strings.Cut(v1, " ")
			if !ok {
				break
			}
			v1 = rest
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
// member, so a record matching at two word starts, or under both folds of one (Members), is listed
// once; one written before plain has only foldV1 members, which come first, so it is still met.
func (p Prefix) Match(id string, texts ...string) (member string, ok bool) {
	for _, st := range starts(texts) {
		for _, text := range st.texts() {
			if text != "" && strings.HasPrefix(text, string(p)) {
				return cut(text) + sep + id, true
			}
		}
	}
	return "", false
}

// ID is the record id of an index member.
func ID(member string) string {
	return member[strings.LastIndex(member, sep)+1:]
}
