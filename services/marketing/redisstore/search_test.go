package redisstore_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
	"github.com/crmcycle/crm/pkg/search/searchtest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// namedLead is a stored lead and the plain forms of its name and company.
type namedLead struct {
	lead          *marketing.Lead
	name, company string
}

// namedLeads stores n leads with generated names and companies (random case and accents) straight
// through the store.
func (f fixture) namedLeads(t *testing.T, n int, seed uint64) []namedLead {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]namedLead, n)
	for i := range out {
		given, family := searchtest.Pick(rng, searchtest.Given), searchtest.Pick(rng, searchtest.Family)
		company := searchtest.Pick(rng, searchtest.Companies)
		lead := &marketing.Lead{
			Id: uuid.Must(uuid.NewV7()).String(), CustomerId: uuid.Must(uuid.NewV7()).String(),
			Email: fmt.Sprintf("named%d@example.com", i), Status: marketingv1.LeadStatus_LEAD_STATUS_NEW,
			GivenName: given.Text, FamilyName: family.Text, Company: company.Text, Etag: "1",
		}
		if err := f.store.CreateLead(context.Background(), f.tenant, marketing.LeadWrite{Lead: lead}); err != nil {
			t.Fatal(err)
		}
		out[i] = namedLead{lead: lead, name: given.Plain + " " + family.Plain, company: company.Plain}
	}
	return out
}

// wantSearch is the independent computation of a search for the plain prefix q: the leads with a
// word of their plain text starting with q, each once, ordered by the text from the first such
// word (the member the lead is listed through), then by id.
func wantSearch(leads []namedLead, text func(namedLead) string, q string) []string {
	type hit struct{ text, id string }
	var hits []hit
	for _, l := range leads {
		for rest := text(l); ; {
			if strings.HasPrefix(rest, q) {
				hits = append(hits, hit{rest, l.lead.GetId()})
				break
			}
			var ok bool
			if _, rest, ok = strings.Cut(rest, " "); !ok {
				break
			}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Or(strings.Compare(a.text, b.text), strings.Compare(a.id, b.id)) })
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.id
	}
	return out
}

// searchAll pages through a name or company search with pages of size and returns the ids in
// order, checking that every cursor names a member in its text form ("<text>\x00<id as text>").
func (f fixture) searchAll(t *testing.T, filter marketing.LeadFilter, size int) []string {
	t.Helper()
	var ids []string
	q := marketing.LeadQuery{Filter: filter, Request: page.Request{Limit: size}}
	for range 100_000 {
		p, err := f.store.ListLeads(context.Background(), f.tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > size {
			t.Fatalf("page of %d, limit %d", len(p.Items), size)
		}
		for _, l := range p.Items {
			ids = append(ids, l.GetId())
		}
		if p.Next == "" {
			return ids
		}
		text, id, ok := strings.Cut(p.Next, "\x00")
		if _, err := uuid.Parse(id); !ok || text == "" || err != nil || len(id) != 36 {
			t.Fatalf("cursor %q: want <text>\\x00<id as text>", p.Next)
		}
		q.After = p.Next
	}
	t.Fatal("search does not end")
	return nil
}

// TestSearchPagesAcrossBucketsInTextOrder: 2,000 leads with generated names and companies, so
// each search index spans dozens of buckets and many members share a text; every query of the
// word lists, typed plain or decorated, pages (pages of 1, 7, 64 or 1,000) through exactly the
// leads the independent computation finds, each once, in its order.
func TestSearchPagesAcrossBucketsInTextOrder(t *testing.T) {
	f := setup(t)
	leads := f.namedLeads(t, 2000, 9)
	scope := f.keys.Scope("marketing", f.tenant)
	if buckets, err := f.rdb.ZCard(context.Background(), scope.Key("leads", "search", "name")+"#d").Result(); err != nil || buckets < 20 {
		t.Fatalf("name index of %d buckets (%v): the test wants pages across many", buckets, err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	sizes := []int{1000, 7, 64, 1}
	for _, field := range []struct {
		name  string
		text  func(namedLead) string
		lists [][]string
	}{
		{"name", func(l namedLead) string { return l.name }, [][]string{searchtest.Given, searchtest.Family}},
		{"company", func(l namedLead) string { return l.company }, [][]string{searchtest.Companies}},
	} {
		for i, q := range searchtest.Queries(field.lists...) {
			typed := q
			if i%2 == 1 {
				typed = searchtest.Decorate(rng, q)
			}
			prefix, ok := search.NewPrefix(typed)
			if !ok {
				t.Fatalf("%q: no prefix", typed)
			}
			var filter marketing.LeadFilter
			if field.name == "name" {
				filter.Name = prefix
			} else {
				filter.Company = prefix
			}
			size := sizes[i%len(sizes)]
			want := wantSearch(leads, field.text, q)
			if got := f.searchAll(t, filter, size); !slices.Equal(got, want) {
				t.Errorf("%s %q, pages of %d: %d leads, want the %d of the independent computation in its order",
					field.name, typed, size, len(got), len(want))
			}
		}
	}
}

// TestRenameAndEraseLeaveTheSearchIndexes: renamed leads are found by their new name and company
// only; erased, they leave no search index key behind.
func TestRenameAndEraseLeaveTheSearchIndexes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	leads := f.namedLeads(t, 300, 10)
	name := func(s string) marketing.LeadFilter {
		p, _ := search.NewPrefix(s)
		return marketing.LeadFilter{Name: p}
	}
	company := func(s string) marketing.LeadFilter {
		p, _ := search.NewPrefix(s)
		return marketing.LeadFilter{Company: p}
	}
	var want []string
	for i, l := range leads {
		prev := l.lead
		next := proto.Clone(prev).(*marketing.Lead)
		next.GivenName, next.FamilyName, next.Company, next.Etag = "Renamed", fmt.Sprintf("Zed%04d", i), "Zenith Works", "2"
		if err := f.store.UpdateLead(ctx, f.tenant, marketing.LeadWrite{Lead: next, Prev: prev}); err != nil {
			t.Fatal(err)
		}
		leads[i].lead = next
		want = append(want, next.GetId())
	}
	// All renamed "renamed zed<i>", in the order of i, which is the order of their ids.
	if got := f.searchAll(t, name("renamed"), 64); !slices.Equal(got, want) {
		t.Fatalf("new name: %d leads, want the %d renamed", len(got), len(want))
	}
	if got := f.searchAll(t, company("zenith w"), 13); !slices.Equal(got, want) {
		t.Fatalf("new company: %d leads, want the %d renamed", len(got), len(want))
	}
	for _, q := range searchtest.Queries(searchtest.Given, searchtest.Family) {
		if strings.HasPrefix("renamed", q) || strings.HasPrefix("zed", q) {
			continue
		}
		if got := f.searchAll(t, name(q), 100); len(got) != 0 {
			t.Fatalf("old name %q still finds %d leads", q, len(got))
		}
	}
	for _, l := range leads {
		if err := f.store.ErasePerson(ctx, f.tenant, marketing.Erasure{Leads: []*marketing.Lead{l.lead}}); err != nil {
			t.Fatal(err)
		}
	}
	scope := f.keys.Scope("marketing", f.tenant)
	if left, err := f.rdb.Keys(ctx, scope.Key("leads", "search")+"*").Result(); err != nil || len(left) != 0 {
		t.Fatalf("search index keys left after every lead was erased: %q, %v", left, err)
	}
}
