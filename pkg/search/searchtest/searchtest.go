// Package searchtest generates what search tests compare against: names that share prefixes,
// written in random case with random accents, beside their plain forms, and which plain names a
// query matches, computed on the plain forms alone (independently of pkg/search's folding).
package searchtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Given, Family and Companies are word lists with shared prefixes ("ada", "adam", "adamson").
var (
	Given     = []string{"ada", "adam", "adele", "adrian", "bea", "beatrix", "elodie", "elo", "eloise", "zoe", "zora", "ines", "inez", "noel", "nora", "celine"}
	Family    = []string{"lovelace", "love", "lovell", "adams", "adamson", "bernard", "berne", "dupont", "dupond", "muller", "mueller", "nunez", "nunes", "cote"}
	Companies = []string{"acme", "acme corp", "acmeo labs", "angstrom labs", "angst", "eclair", "eclat studio", "noel freres", "nordic", "cafe de paris"}
)

// accents are letters with marks that fold to the plain letter: NFKD gives the letter and a
// combining mark.
var accents = map[rune][]rune{
	'a': []rune("áàâäå"), 'e': []rune("éèêë"), 'i': []rune("íìîï"), 'o': []rune("óòôö"),
	'u': []rune("úùûü"), 'c': []rune("ç"), 'n': []rune("ñ"), 'y': []rune("ýÿ"),
}

// Name is a generated text and its plain form: lower-case ASCII words joined by one space.
type Name struct{ Text, Plain string }

// Pick joins one random word of each list into a plain name and writes it decorated.
func Pick(rng *rand.Rand, lists ...[]string) Name {
	words := make([]string, len(lists))
	for i, l := range lists {
		words[i] = l[rng.IntN(len(l))]
	}
	plain := strings.Join(words, " ")
	return Name{Text: Decorate(rng, plain), Plain: plain}
}

// Decorate writes a plain text with random accents and random case, and sometimes more spaces
// or punctuation between words, which search ignores.
func Decorate(rng *rand.Rand, plain string) string {
	var b strings.Builder
	for _, r := range plain {
		if r == ' ' {
			b.WriteString([]string{" ", "  ", "-", ", "}[rng.IntN(4)])
			continue
		}
		if marked, ok := accents[r]; ok && rng.IntN(3) == 0 {
			r = marked[rng.IntN(len(marked))]
		}
		if rng.IntN(3) == 0 {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Matches is whether a plain name has a word from which it starts with the plain query.
func Matches(plain, query string) bool {
	for {
		if strings.HasPrefix(plain, query) {
			return true
		}
		_, rest, ok := strings.Cut(plain, " ")
		if !ok {
			return false
		}
		plain = rest
	}
}

// Queries are plain prefixes of the lists' words (one to four letters, whole words, two words),
// some matching nothing.
func Queries(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(q string) {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	for _, l := range lists {
		for _, w := range l {
			for n := 1; n <= min(4, len(w)); n++ {
				add(w[:n])
			}
			add(w)
		}
	}
	add("ada lo")
	add("acme c")
	add("zzz")
	add("lovelacex")
	return out
}

// Record is a record's id and the plain form of its searched text.
type Record struct{ ID, Plain string }

// Check runs every query of the word lists against a list, typed plain or decorated in turn as
// the filter `<field>:"<query>*"`, and compares the ids find pages out of it (i varies the page
// size) with the records whose plain text matches: each record once, none missing, none more.
func Check(t testing.TB, field string, records []Record, lists [][]string, find func(filter string, i int) []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	for i, q := range Queries(lists...) {
		var want []string
		for _, r := range records {
			if Matches(r.Plain, q) {
				want = append(want, r.ID)
			}
		}
		typed := q
		if i%2 == 1 {
			typed = Decorate(rng, q)
		}
		got := find(fmt.Sprintf("%s:%q", field, typed+"*"), i)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s:%q: %d records, want %d (the independent computation)", field, typed, len(got), len(want))
		}
	}
}
