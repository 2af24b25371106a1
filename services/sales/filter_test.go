package sales_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/services/sales"
)

// parseCase is one filter and the index it must select, or bad when it must be refused.
type parseCase struct {
	filter string
	want   sales.Index
	bad    bool
}

func checkParse(t *testing.T, parse func(string) (sales.Index, error), cases []parseCase) {
	t.Helper()
	for _, c := range cases {
		got, err := parse(c.filter)
		if c.bad {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want an error", c.filter, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", c.filter, diff)
		}
	}
}

func TestParseOpportunityFilter(t *testing.T) {
	const acct = "0190a1b2-0000-7000-8000-000000000001"
	checkParse(t, sales.ParseOpportunityFilter, []parseCase{
		{filter: "", want: sales.Index{Desc: true}},
		{filter: `ownerId = "ada"`, want: sales.Index{Name: []string{"owner_id", "ada"}, Desc: true}},
		{filter: `account_id = "` + strings.ToUpper(acct) + `"`, want: sales.Index{Name: []string{"account_id", acct}, Desc: true}},
		{filter: `closeDate >= "2026-07-01"`, want: sales.Index{Name: []string{"close_date"}, Min: "[2026-07-01", Max: "+"}},
		{filter: `amount < 5 AND amount >= 1`, want: sales.Index{Name: []string{"amount"},
			Min: "[0000000000000000001000000000", Max: "(0000000000000000005000000000"}},
		{filter: `stage = "PROPOSAL"`, want: sales.Index{Name: []string{"stage", "PROPOSAL"}, Desc: true}},
		{filter: `owner_id = ada`, want: sales.Index{Name: []string{"owner_id", "ada"}, Desc: true}},
		{filter: `close_date >= "2026-07-01" AND close_date < "2026-10-01"`,
			want: sales.Index{Name: []string{"close_date"}, Min: "[2026-07-01", Max: "(2026-10-01"}},
		{filter: `close_date = "2026-07-01"`, want: sales.Index{Name: []string{"close_date"}, Min: "[2026-07-01", Max: "(2026-07-01\x01"}},
		{filter: `amount > 5`, want: sales.Index{Name: []string{"amount"}, Min: "(0000000000000000005000000000\x01", Max: "+"}},
		{filter: `amount <= 5`, want: sales.Index{Name: []string{"amount"}, Min: "-", Max: "(0000000000000000005000000000\x01"}},
		{filter: `amount > -5`, bad: true},
		{filter: `amount != 5`, bad: true},
		{filter: `amount > 1 AND amount > 2`, bad: true},
		{filter: `amount > 1 AND close_date < "2026-01-01"`, bad: true},
		{filter: `stage = "PRO*"`, bad: true},
		{filter: `stage = ""`, bad: true},
		{filter: `account_id = "acme"`, bad: true},
		{filter: `amount > 5.5`, bad: true},
		{filter: `close_date > "2026-13-01"`, bad: true},
		{filter: `amount > 5 AND stage = "X"`, bad: true},
		{filter: `stage > "X"`, bad: true},
		{filter: `colour = "red"`, bad: true},
		{filter: `stage = "A" OR stage = "B"`, bad: true},
	})
}

func TestParseAccountFilter(t *testing.T) {
	checkParse(t, sales.ParseAccountFilter, []parseCase{
		{filter: `display_name = "Acme*"`, want: sales.Index{Name: []string{"name"}, Min: "[acme", Max: "(acme\xff", Search: "acme"}},
		{filter: `displayName:"ÄCMÉ*"`, want: sales.Index{Name: []string{"name"}, Min: "[acme", Max: "(acme\xff", Search: "acme"}},
		// U+FFFD is not a letter: search reads it as a word break.
		{filter: `display_name = "Caf�*"`, want: sales.Index{Name: []string{"name"}, Min: "[caf", Max: "(caf\xff", Search: "caf"}},
		{filter: `industry = "software"`, want: sales.Index{Name: []string{"industry", "software"}, Desc: true}},
		{filter: `display_name:"a*" AND industry = "x"`,
			want: sales.Index{Name: []string{"name"}, Min: "[a", Max: "(a\xff", Search: "a", Also: []string{"industry", "x"}}},
		{filter: `display_name = "Acme"`, bad: true},
		{filter: `display_name = " *"`, bad: true},
		{filter: `display_name = "a\x00*"`, bad: true},
		{filter: `owner_id = "a" AND industry = "x"`, bad: true},
	})
}

func TestParseContactFilter(t *testing.T) {
	const account = "0190a1b2-0000-7000-8000-000000000002"
	checkParse(t, sales.ParseContactFilter, []parseCase{
		{filter: `email = " Ada@Example.COM"`, want: sales.Index{Email: "ada@example.com"}},
		{filter: `email = "ada@example.com" AND accountId = "` + account + `"`,
			want: sales.Index{Email: "ada@example.com", Also: []string{"account_id", account}}},
		{filter: `displayName:"Lové*" AND owner_id = "u1"`,
			want: sales.Index{Name: []string{"name"}, Min: "[love", Max: "(love\xff", Search: "love", Also: []string{"owner_id", "u1"}}},
		{filter: `account_id = "` + account + `"`, want: sales.Index{Name: []string{"account_id", account}, Desc: true}},
		{filter: `email = "not-an-email"`, bad: true},
		{filter: `email:"ada*"`, bad: true},
		{filter: `email = "a@b.co" AND display_name:"a*"`, bad: true},
		{filter: `display_name:"a*" AND account_id = "x"`, bad: true},
	})
}

func TestParseOrderFilter(t *testing.T) {
	const cust = "0190a1b2-0000-7000-8000-000000000002"
	checkParse(t, sales.ParseOrderFilter, []parseCase{
		{filter: ``, want: sales.Index{Name: []string{"time"}, Min: "-", Max: "+", Desc: true}},
		{filter: `customerId = "` + cust + `" AND create_time >= "2026-07-01T00:00:00Z"`,
			want: sales.Index{Name: []string{"time", "customer_id", cust}, Min: "[1782864000000", Max: "+", Desc: true}},
		{filter: `create_time < "2026-07-01T00:00:00Z"`, want: sales.Index{Name: []string{"time"}, Min: "-", Max: "(1782864000000", Desc: true}},
		{filter: `create_time = "2026-07-01T00:00:00Z"`, bad: true},
		{filter: `create_time > "2026-07-01"`, bad: true},
		{filter: `customer_id = "x"`, bad: true},
	})
}

func TestPeriods(t *testing.T) {
	for date, want := range map[string][]string{
		"2026-01-31": {"2026-01", "2026-Q1"}, "2026-04-01": {"2026-04", "2026-Q2"},
		"2026-09-30": {"2026-09", "2026-Q3"}, "2026-12-31": {"2026-12", "2026-Q4"}, "bad": nil,
	} {
		if got := sales.Periods(date); !cmp.Equal(got, want) {
			t.Errorf("Periods(%s) = %v, want %v", date, got, want)
		}
	}
}

// FuzzFilters: no filter text makes a parser panic, and what parses names an index.
func FuzzFilters(f *testing.F) {
	for _, s := range []string{`stage = "X"`, `amount >= 1 AND amount < 2`, `display_name = "ac*"`, `customer_id = "x" AND create_time > "2026-01-01T00:00:00Z"`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		for _, parse := range []func(string) (sales.Index, error){
			sales.ParseAccountFilter, sales.ParseContactFilter, sales.ParseOpportunityFilter, sales.ParseOrderFilter, sales.ParseActivityFilter,
		} {
			if ix, err := parse(filter); err == nil && strings.TrimSpace(filter) != "" && len(ix.Name) == 0 {
				t.Fatalf("%q parsed to the index of everything: %+v", filter, ix)
			}
		}
	})
}
