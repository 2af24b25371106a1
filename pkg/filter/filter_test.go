package filter_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/filter"
)

// leads is a list shaped like ListLeads: equality fields, a repeated field, a range and one pair.
var leads = filter.List{
	Fields: []filter.Field{
		{Name: "status", Ops: []filter.Operator{filter.Equal}},
		{Name: "campaign_id", Ops: []filter.Operator{filter.Equal}},
		{Name: "tags", Ops: []filter.Operator{filter.Has}},
		{Name: "score", Ops: append([]filter.Operator{filter.Equal}, filter.Range...)},
		{Name: "display_name", Ops: []filter.Operator{filter.Equal, filter.Has}},
		{Name: "active", Ops: []filter.Operator{filter.Equal, filter.NotEqual}},
	},
	Pairs: [][2]string{{"status", "score"}},
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		filter string
		want   []filter.Term
	}{
		{filter: "", want: nil},
		{filter: "  ", want: nil},
		{filter: "status = LEAD_STATUS_NEW", want: []filter.Term{{Field: "status", Op: "=", Value: "LEAD_STATUS_NEW"}}},
		{filter: `campaignId = "0190a1b2-0000-7000-8000-000000000001"`,
			want: []filter.Term{{Field: "campaign_id", Op: "=", Value: "0190a1b2-0000-7000-8000-000000000001"}}},
		{filter: `tags:"a AND b"`, want: []filter.Term{{Field: "tags", Op: ":", Value: "a AND b"}}},
		{filter: `tags:vip`, want: []filter.Term{{Field: "tags", Op: ":", Value: "vip"}}},
		{filter: `score >= 40 AND score < 80`,
			want: []filter.Term{{Field: "score", Op: ">=", Value: "40"}, {Field: "score", Op: "<", Value: "80"}}},
		{filter: `status = LEAD_STATUS_NEW AND (score > 5)`,
			want: []filter.Term{{Field: "status", Op: "=", Value: "LEAD_STATUS_NEW"}, {Field: "score", Op: ">", Value: "5"}}},
		{filter: `score <= 5 AND status=LEAD_STATUS_NEW`,
			want: []filter.Term{{Field: "score", Op: "<=", Value: "5"}, {Field: "status", Op: "=", Value: "LEAD_STATUS_NEW"}}},
		{filter: `score = -3`, want: []filter.Term{{Field: "score", Op: "=", Value: "-3"}}},
		{filter: `score = 2.5`, want: []filter.Term{{Field: "score", Op: "=", Value: "2.5"}}},
		{filter: `display_name:"Caf` + "\uFFFD" + `*"`, want: []filter.Term{{Field: "display_name", Op: ":", Value: "Caf\uFFFD*"}}},
		{filter: `display_name = 'it\'s*'`, want: []filter.Term{{Field: "display_name", Op: "=", Value: "it's*"}}},
		{filter: `active != true`, want: []filter.Term{{Field: "active", Op: "!=", Value: "true"}}},
	} {
		got, err := leads.Parse(c.filter)
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", c.filter, diff)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		filter string
		names  string // what the description must name
	}{
		{filter: `colour = "red"`, names: "colour"},
		{filter: `assigneeId = "ada"`, names: "assigneeId"},
		{filter: `status != LEAD_STATUS_NEW`, names: "status"},
		{filter: `tags = "vip"`, names: "tags"},
		{filter: `status = LEAD_STATUS_NEW AND campaign_id = "x"`, names: "campaign_id"},
		{filter: `status = LEAD_STATUS_NEW AND status = LEAD_STATUS_LOST`, names: "status"},
		{filter: `score > 1 AND score >= 2`, names: "score"},
		{filter: `score = 1 AND score < 2`, names: "score"},
		{filter: `status = A OR status = B`, names: "OR"},
		{filter: `NOT status = A`, names: "NOT"},
		{filter: `-status = A`, names: "NOT"},
		{filter: `status = A tags:b`, names: "sequence"},
		{filter: `vip`, names: "comparisons"},
		{filter: `AND()`, names: "comparisons"},
		{filter: `score > timestamp("2026-01-01T00:00:00Z")`, names: "score"},
		{filter: `a.b = 1`, names: "field name"},
		{filter: `5 = score`, names: "field name"},
		{filter: `status = (a AND b)`, names: "status"},
		{filter: `display_name = "a\x00b"`, names: "display_name"},
		{filter: `status = "unterminated`, names: "no closing quote"},
		{filter: "status = \xff", names: "UTF-8"},
		{filter: `score > 1 AND score < 5 AND status = A AND status = B AND tags:x`, names: "at most"},
	} {
		got, err := leads.Parse(c.filter)
		e, ok := apierr.As(err)
		if !ok || e.Kind != apierr.InvalidArgument || len(e.Fields) != 1 || e.Fields[0].Field != "filter" {
			t.Errorf("%q: got %v, %v; want INVALID_ARGUMENT on filter", c.filter, got, err)
			continue
		}
		if !strings.Contains(e.Fields[0].Description, c.names) {
			t.Errorf("%q: got %q, want it to name %s", c.filter, e.Fields[0].Description, c.names)
		}
	}
}

// TestSyntaxErrorsAreOneLine: a filter the grammar refuses is described in one line, saying what
// was expected or found and at which column, never with the parser's trace of its rules.
func TestSyntaxErrorsAreOneLine(t *testing.T) {
	for text, want := range map[string]string{
		"status = ":                "expected a value after '=' at column 10, where the filter ends",
		"score >= ":                "expected a value after '>=' at column 10, where the filter ends",
		"tags:":                    "expected a value after ':' at column 6, where the filter ends",
		"status =  AND x":          `expected a value after '=' at column 11, not "AND"`,
		"status ==== 1":            `expected a value after '=' at column 9, not "==="`,
		"status = 1 AND":           "expected a comparison after AND at column 15, where the filter ends",
		"(status = 1":              "expected ')' at column 12",
		"status = 1)":              `unexpected ")" at column 11`,
		"= 1":                      `unexpected "=" at column 1`,
		`status = "new`:            "the string at column 10 has no closing quote",
		"status = \xff":            "not valid UTF-8 at column 10",
		"status = 1 AND\n score >": "expected a value after '>' at line 2, column 9, where the filter ends",
	} {
		_, err := leads.Parse(text)
		e, ok := apierr.As(err)
		if !ok || e.Kind != apierr.InvalidArgument || len(e.Fields) != 1 || e.Fields[0].Field != "filter" {
			t.Errorf("%q: got %v, want INVALID_ARGUMENT on filter", text, err)
			continue
		}
		if e.Fields[0].Description != want || e.Message != "invalid filter: "+want {
			t.Errorf("%q: got %q (message %q), want %q", text, e.Fields[0].Description, e.Message, want)
		}
	}
}

func TestValues(t *testing.T) {
	enum := map[string]int32{"X_UNSPECIFIED": 0, "X_ONE": 1}
	for _, c := range []struct {
		term filter.Term
		get  func(filter.Term) (any, error)
		want any // nil: refused
	}{
		{filter.Term{Value: "X_ONE"}, func(t filter.Term) (any, error) { return t.Enum(enum) }, int32(1)},
		{filter.Term{Value: "X_UNSPECIFIED"}, func(t filter.Term) (any, error) { return t.Enum(enum) }, nil},
		{filter.Term{Value: "X_TWO"}, func(t filter.Term) (any, error) { return t.Enum(enum) }, nil},
		{filter.Term{Op: "=", Value: "true"}, func(t filter.Term) (any, error) { return t.Bool() }, true},
		{filter.Term{Op: "=", Value: "false"}, func(t filter.Term) (any, error) { return t.Bool() }, false},
		{filter.Term{Op: "!=", Value: "true"}, func(t filter.Term) (any, error) { return t.Bool() }, false},
		{filter.Term{Op: "!=", Value: "false"}, func(t filter.Term) (any, error) { return t.Bool() }, true},
		{filter.Term{Op: "=", Value: "1"}, func(t filter.Term) (any, error) { return t.Bool() }, nil},
		{filter.Term{Value: "0190A1B2-0000-7000-8000-000000000001"}, func(t filter.Term) (any, error) { return t.ID() },
			"0190a1b2-0000-7000-8000-000000000001"},
		{filter.Term{Value: "urn:uuid:0190a1b2-0000-7000-8000-000000000001"}, func(t filter.Term) (any, error) { return t.ID() }, nil},
		{filter.Term{Value: "Acme*"}, func(t filter.Term) (any, error) { return t.Prefix() }, "Acme"},
		{filter.Term{Value: "*"}, func(t filter.Term) (any, error) { return t.Prefix() }, nil},
		{filter.Term{Value: "A*c*"}, func(t filter.Term) (any, error) { return t.Prefix() }, nil},
		{filter.Term{Value: "Acme"}, func(t filter.Term) (any, error) { return t.Prefix() }, nil},
		{filter.Term{Value: "ada"}, func(t filter.Term) (any, error) { return t.Text() }, "ada"},
		{filter.Term{Value: ""}, func(t filter.Term) (any, error) { return t.Text() }, nil},
		{filter.Term{Value: "ad*"}, func(t filter.Term) (any, error) { return t.Text() }, nil},
		{filter.Term{Value: "7"}, func(t filter.Term) (any, error) { return t.Int(0) }, int64(7)},
		{filter.Term{Value: "-1"}, func(t filter.Term) (any, error) { return t.Int(0) }, nil},
		{filter.Term{Value: "2.5"}, func(t filter.Term) (any, error) { return t.Int(0) }, nil},
		{filter.Term{Value: "2026-07-01"}, func(t filter.Term) (any, error) { return t.Date() }, "2026-07-01"},
		{filter.Term{Value: "2026-13-01"}, func(t filter.Term) (any, error) { return t.Date() }, nil},
		{filter.Term{Value: "2026-07-01T00:00:00Z"}, func(t filter.Term) (any, error) { v, err := t.Time(); return v.Unix(), err }, int64(1782864000)},
		{filter.Term{Value: "2026-07-01"}, func(t filter.Term) (any, error) { return t.Time() }, nil},
	} {
		c.term.Field = "f"
		got, err := c.get(c.term)
		if c.want == nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument || !strings.HasPrefix(e.Fields[0].Description, "f: ") {
				t.Errorf("%+v: got %v, %v; want INVALID_ARGUMENT naming f", c.term, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: got %v, %v; want %v", c.term, got, err, c.want)
		}
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"assigneeId": "assignee_id", "sla_breached": "sla_breached", "createTime": "create_time", "id": "id"} {
		if got := filter.SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: no filter text makes the parser panic; what it accepts is terms the list serves,
// and what it refuses is INVALID_ARGUMENT on filter.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`status = LEAD_STATUS_NEW`, `tags:"a AND b"`, `score >= 1 AND score < 2`, `(a = 1) OR b`,
		`display_name = "x*"`, `"`, `a.b.c = f(1, 2)`, `score > -0x10`, `NOT a`, `a = 1.5e3`, "status = ", "(a = 1\n", "a = 1 AND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		terms, err := leads.Parse(text)
		if err != nil {
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument || e.Fields[0].Field != "filter" {
				t.Fatalf("%q: got %v, want INVALID_ARGUMENT on filter", text, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: the description is not one line: %q", text, err)
			}
			return
		}
		if len(terms) == 0 && strings.TrimSpace(text) != "" {
			t.Fatalf("%q parsed to no terms", text)
		}
		for _, term := range terms {
			if term.Field == "" || term.Op == "" {
				t.Fatalf("%q: incomplete term %+v", text, term)
			}
		}
	})
}
