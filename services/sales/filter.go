package sales

import (
	"regexp"
	"slices"
	"strings"
)

// term is one comparison of an AIP-160 filter: field op value.
type term struct{ field, op, value string }

var (
	andPattern  = regexp.MustCompile(`\s+AND\s+`)
	termPattern = regexp.MustCompile(`^\s*([a-z_]+)\s*(=|>=|<=|>|<)\s*("([^"]*)"|[^\s"]+)\s*$`)
)

// parseTerms splits a conjunction of comparisons; invalid when any part is not one.
func parseTerms(filter string, invalid error) ([]term, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	var out []term
	for _, part := range andPattern.Split(strings.TrimSpace(filter), -1) {
		m := termPattern.FindStringSubmatch(part)
		if m == nil {
			return nil, invalid
		}
		value := m[3]
		if strings.HasPrefix(value, `"`) {
			value = m[4]
		}
		out = append(out, term{field: m[1], op: m[2], value: value})
	}
	return out, nil
}

// equalityIndex parses a filter of one `field = "value"` term over the given fields into the
// index named after the field; an empty filter is the index of all.
func equalityIndex(filter string, fields []string, invalid error) (Index, error) {
	terms, err := parseTerms(filter, invalid)
	if err != nil || len(terms) == 0 {
		return newestFirst(), err
	}
	t := terms[0]
	if len(terms) != 1 || t.op != "=" || t.value == "" || !slices.Contains(fields, t.field) {
		return Index{}, invalid
	}
	return newestFirst(t.field, t.value), nil
}

// rangeBounds turns range terms over one sort key into lex bounds over members "<key>\x00<id>";
// encode maps a filter value to its sort key, false when it is not a valid value.
func rangeBounds(terms []term, encode func(string) (string, bool), invalid error) (lo, hi string, err error) {
	lo, hi = "-", "+"
	for _, t := range terms {
		key, ok := encode(t.value)
		if !ok {
			return "", "", invalid
		}
		switch t.op {
		case ">=":
			lo = "[" + key
		case ">":
			lo = "(" + key + "\x01"
		case "<":
			hi = "(" + key
		case "<=":
			hi = "(" + key + "\x01"
		case "=":
			lo, hi = "["+key, "("+key+"\x01"
		}
	}
	return lo, hi, nil
}
