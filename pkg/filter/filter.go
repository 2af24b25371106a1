// Package filter reads the AIP-160 filter of every list: go.einride.tech/aip parses the text, and
// this package reduces the tree to what an index can answer, comparisons of one field with one
// literal joined by AND, checked against what the list declares it serves. Each service maps the
// terms onto its own query; nothing here knows a service's fields.
package filter

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.einride.tech/aip/filtering"
	expr "google.golang.org/genproto/googleapis/api/expr/v1alpha1"

	"github.com/crmcycle/crm/pkg/apierr"
)

// Operator is a comparison of AIP-160.
type Operator string

// The comparisons a term may use.
const (
	Equal          Operator = filtering.FunctionEquals
	NotEqual       Operator = filtering.FunctionNotEquals
	Less           Operator = filtering.FunctionLessThan
	LessOrEqual    Operator = filtering.FunctionLessEquals
	Greater        Operator = filtering.FunctionGreaterThan
	GreaterOrEqual Operator = filtering.FunctionGreaterEquals
	// Has is `:`: a repeated field contains the value, or a string starts with the value's text
	// before a trailing `*`.
	Has Operator = filtering.FunctionHas
)

// Range are the comparisons that bound a range: a field may appear once as a lower bound and once
// as an upper bound.
var Range = []Operator{Less, LessOrEqual, Greater, GreaterOrEqual}

// Term is one comparison: Field Op Value. Field is the proto (snake_case) name; Value is the
// literal as the client wrote it, unquoted.
type Term struct {
	Field string
	Op    Operator
	Value string
}

// Field is a field a list filters on and the comparisons its index serves.
type Field struct {
	Name string
	Ops  []Operator
}

// List is what one List RPC serves: its fields, and the pairs of fields it answers together
// (each pair one index or a bounded intersection).
type List struct {
	Fields []Field
	Pairs  [][2]string
}

// maxTerms bounds a conjunction: no list combines more than two fields, each at most a range.
const maxTerms = 4

// Parse parses a filter for a list: the empty filter is no terms; anything the list cannot
// serve is INVALID_ARGUMENT on the field "filter", naming the field at fault.
func (l List) Parse(text string) ([]Term, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var p filtering.Parser
	p.Init(text)
	parsed, err := p.Parse()
	if err != nil {
		return nil, syntaxError(text, err)
	}
	var terms []Term
	if err := collect(parsed.GetExpr(), &terms); err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		return nil, invalid("a filter is comparisons such as field = \"value\", joined by AND")
	}
	if len(terms) > maxTerms {
		return nil, invalid("at most %d comparisons, joined by AND", maxTerms)
	}
	for _, t := range terms {
		if err := l.check(t); err != nil {
			return nil, err
		}
	}
	if err := l.checkCombination(terms); err != nil {
		return nil, err
	}
	return terms, nil
}

// collect flattens a conjunction into its terms, refusing every other form.
func collect(e *expr.Expr, out *[]Term) error {
	call := e.GetCallExpr()
	if call == nil {
		return invalid("a filter is comparisons such as field = \"value\", joined by AND")
	}
	switch call.GetFunction() {
	case filtering.FunctionAnd:
		for _, arg := range call.GetArgs() {
			if err := collect(arg, out); err != nil {
				return err
			}
		}
		return nil
	case filtering.FunctionOr, filtering.FunctionNot, filtering.FunctionFuzzyAnd:
		return invalid("%s is not supported: join comparisons with AND", operatorName(call.GetFunction()))
	case filtering.FunctionEquals, filtering.FunctionNotEquals, filtering.FunctionLessThan, filtering.FunctionLessEquals,
		filtering.FunctionGreaterThan, filtering.FunctionGreaterEquals, filtering.FunctionHas:
	default:
		return invalid("function %s is not supported", call.GetFunction())
	}
	args := call.GetArgs()
	if len(args) != 2 {
		return invalid("%s compares a field with a value", call.GetFunction())
	}
	field := args[0].GetIdentExpr().GetName()
	if field == "" {
		return invalid("the left of %s must be a field name", call.GetFunction())
	}
	value, ok := literal(args[1])
	if !ok {
		return invalid("%s %s takes one literal value", field, call.GetFunction())
	}
	if !utf8.ValidString(value) || strings.ContainsRune(value, 0) {
		return invalid("%s: the value must be valid UTF-8 without NUL", field)
	}
	*out = append(*out, Term{Field: field, Op: Operator(call.GetFunction()), Value: value})
	return nil
}

// syntaxError turns the parser's error, a trace of every grammar rule it was in, into one line
// for the client: what was expected or found, and where. The trace's innermost frame is the
// fault; an enclosing "arg" frame means the fault is where a comparison's value should be.
func syntaxError(text string, err error) error {
	type frame interface {
		Position() filtering.Position
		Message() string
	}
	var fault frame
	argAt := -1
	for e := err; e != nil; e = errors.Unwrap(e) {
		if f, ok := e.(frame); ok {
			fault = f
			if f.Message() == "arg" {
				argAt = int(f.Position().Offset)
			}
		}
	}
	if fault == nil {
		return invalid("cannot be parsed: a filter is comparisons such as field = \"value\", joined by AND")
	}
	at := min(max(int(fault.Position().Offset), 0), len(text))
	// What the parser stopped at, from its first non-space character: a word or a run of symbols.
	rest := strings.TrimLeftFunc(text[at:], unicode.IsSpace)
	at = len(text) - len(rest)
	found := strings.FieldsFunc(rest, unicode.IsSpace)
	after := "" // " after '='"
	if op := lastComparator(text[:min(max(argAt, 0), len(text))]); argAt >= 0 && op != "" {
		after = " after '" + op + "'"
	}
	msg := fault.Message()
	switch {
	case msg == "expected int or fraction":
		return invalid("expected a number at %s", column(text, at))
	case strings.HasPrefix(msg, "expected "): // a token: "expected )"
		return invalid("expected '%s' at %s", strings.TrimPrefix(msg, "expected "), column(text, at))
	case errors.Is(err, io.EOF) || len(found) == 0:
		if argAt >= 0 {
			return invalid("expected a value%s at %s, where the filter ends", after, column(text, len(text)))
		}
		return invalid("the filter ends early at %s", column(text, len(text)))
	case msg == "unterminated string":
		return invalid("the string at %s has no closing quote", column(text, at))
	case msg == "invalid UTF-8":
		return invalid("not valid UTF-8 at %s", column(text, at))
	case argAt >= 0:
		return invalid("expected a value%s at %s, not %q", after, column(text, at), found[0])
	case (found[0] == "AND" || found[0] == "OR") && len(found) == 1:
		return invalid("expected a comparison after %s at %s, where the filter ends", found[0], column(text, len(text)))
	}
	return invalid("unexpected %q at %s", found[0], column(text, at))
}

// lastComparator is the comparator the text before a value ends with.
func lastComparator(before string) string {
	before = strings.TrimRightFunc(before, unicode.IsSpace)
	for _, op := range []Operator{GreaterOrEqual, LessOrEqual, NotEqual, Equal, Less, Greater, Has} {
		if strings.HasSuffix(before, string(op)) {
			return string(op)
		}
	}
	return ""
}

// column names the character at byte offset of text as "column 10" (with the line when the filter
// has several).
func column(text string, offset int) string {
	before := text[:offset]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	if line > 1 {
		return fmt.Sprintf("line %d, column %d", line, col)
	}
	return fmt.Sprintf("column %d", col)
}

// literal is the text of a value: a string, a number or a bare word (an enum name, true).
func literal(e *expr.Expr) (string, bool) {
	if id := e.GetIdentExpr(); id != nil {
		return id.GetName(), true
	}
	switch c := e.GetConstExpr().GetConstantKind().(type) {
	case *expr.Constant_StringValue:
		return c.StringValue, true
	case *expr.Constant_Int64Value:
		return strconv.FormatInt(c.Int64Value, 10), true
	case *expr.Constant_DoubleValue:
		return strconv.FormatFloat(c.DoubleValue, 'f', -1, 64), true
	}
	return "", false
}

func operatorName(fn string) string {
	if fn == filtering.FunctionFuzzyAnd {
		return "a bare sequence of terms"
	}
	return fn
}

// check resolves a term's field to the list's (snake_case) name and checks its comparison.
func (l List) check(t Term) error {
	f, ok := l.field(t.Field)
	if !ok {
		return invalid("cannot filter on %s: %s", t.Field, l)
	}
	if !slices.Contains(f.Ops, t.Op) {
		return invalid("%s takes %s, not %s", f.Name, opList(f.Ops), t.Op)
	}
	return nil
}

func (l List) field(name string) (Field, bool) {
	snake := SnakeCase(name)
	for _, f := range l.Fields {
		if f.Name == name || f.Name == snake {
			return f, true
		}
	}
	return Field{}, false
}

// checkCombination names each term's field as the list does and checks that the fields, taken
// together, are one the list serves: one field, or a declared pair; a field twice only as the
// two ends of a range.
func (l List) checkCombination(terms []Term) error {
	var fields []string
	bounds := map[string][2]int{}
	for i := range terms {
		f, _ := l.field(terms[i].Field)
		terms[i].Field = f.Name
		b := bounds[f.Name]
		switch terms[i].Op {
		case Greater, GreaterOrEqual:
			b[0]++
		case Less, LessOrEqual:
			b[1]++
		default:
			b[0], b[1] = b[0]+1, b[1]+1
		}
		bounds[f.Name] = b
		if b[0] > 1 || b[1] > 1 {
			return invalid("%s appears twice: a field takes one comparison, or a lower and an upper bound", f.Name)
		}
		if !slices.Contains(fields, f.Name) {
			fields = append(fields, f.Name)
		}
	}
	switch {
	case len(fields) <= 1:
		return nil
	case len(fields) == 2 && (slices.Contains(l.Pairs, [2]string{fields[0], fields[1]}) ||
		slices.Contains(l.Pairs, [2]string{fields[1], fields[0]})):
		return nil
	default:
		return invalid("%s cannot be combined with %s: %s", fields[1], fields[0], l)
	}
}

// String says what the list serves, for error messages.
func (l List) String() string {
	var b strings.Builder
	b.WriteString("filterable fields are ")
	for i, f := range l.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", f.Name, opList(f.Ops))
	}
	if len(l.Pairs) == 0 {
		b.WriteString("; one field at a time")
		return b.String()
	}
	b.WriteString("; combined with AND only ")
	for i, p := range l.Pairs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p[0] + " with " + p[1])
	}
	return b.String()
}

func opList(ops []Operator) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, " ")
}

// SnakeCase turns a lowerCamelCase JSON name into its proto name; a snake_case name is unchanged.
func SnakeCase(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func invalid(format string, args ...any) error {
	return apierr.Invalid("filter", fmt.Sprintf(format, args...))
}
