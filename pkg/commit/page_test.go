package commit_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/redistest"
)

// member is one entry of the model of an index.
type member struct {
	name  string
	score float64
}

// model is the index the tests page over: names with a NUL and a high byte, and many ties.
func model() []member {
	var out []member
	for i := range 37 {
		out = append(out, member{name: fmt.Sprintf("m%02d\x00%c", (i*11)%37, 'a'+i%3), score: float64(i % 5)})
	}
	out = append(out, member{name: "\xffhigh", score: 2}, member{name: "-neg", score: -1.5})
	return out
}

// ordered is the model's members in r's reading order within keep: the independent computation.
func ordered(ms []member, r commit.Range, keep func(member) bool) []string {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b member) int {
		if r.ByScore && a.score != b.score {
			return cmp.Compare(a.score, b.score)
		}
		return cmp.Compare(a.name, b.name)
	})
	if r.Desc {
		slices.Reverse(ms)
	}
	var out []string
	for _, m := range ms {
		if keep(m) {
			out = append(out, m.name)
		}
	}
	return out
}

func fill(t *testing.T, rdb redis.UniversalClient, index string, ms []member, byScore bool) {
	t.Helper()
	w := commit.New()
	for _, m := range ms {
		score := 0.0
		if byScore {
			score = m.score
		}
		w.ZAdd(index, score, m.name)
	}
	if err := w.Run(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
}

var rangeTests = []struct {
	name  string
	r     commit.Range
	keep  func(member) bool
	limit int
}{
	{"by member, newest first", commit.Range{Desc: true}, func(member) bool { return true }, 4},
	{"by member, ascending", commit.Range{}, func(member) bool { return true }, 7},
	{"by member prefix", commit.Range{Min: "[m1", Max: "(m1\xff"},
		func(m member) bool { return m.name >= "m1" && m.name < "m1\xff" }, 3},
	{"by member, bounded, descending", commit.Range{Min: "(m05", Max: "[m30", Desc: true},
		func(m member) bool { return m.name > "m05" && m.name <= "m30" }, 5},
	{"by score", commit.Range{ByScore: true}, func(member) bool { return true }, 4},
	{"by score, descending", commit.Range{ByScore: true, Desc: true}, func(member) bool { return true }, 3},
	{"by score, bounded", commit.Range{ByScore: true, Min: "1", Max: "(3"},
		func(m member) bool { return m.score >= 1 && m.score < 3 }, 2},
	{"by score, bounded, descending", commit.Range{ByScore: true, Min: "(-1.5", Max: "2", Desc: true},
		func(m member) bool { return m.score > -1.5 && m.score <= 2 }, 6},
	{"by score, one page", commit.Range{ByScore: true, Max: "0"}, func(m member) bool { return m.score <= 0 }, 100},
	{"by score, empty", commit.Range{ByScore: true, Min: "(4"}, func(m member) bool { return m.score > 4 }, 3},
}

// TestPagesReadLikeAnIndependentSort pages through every range with tokens signed for the query,
// as a list call does, and gets the model's members in order, each once; another query's token, or
// a tampered one, is refused.
func TestPagesReadLikeAnIndependentSort(t *testing.T) {
	ctx := context.Background()
	tokens := pagetoken.New(bytes.Repeat([]byte{3}, 32))
	for name, c := range clients(t) {
		fill(t, c.rdb, c.scope.Key("by-member"), model(), false)
		fill(t, c.rdb, c.scope.Key("by-score"), model(), true)
		for _, tt := range rangeTests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				r := tt.r
				r.Index, r.Limit = c.scope.Key("by-member"), tt.limit
				if r.ByScore {
					r.Index = c.scope.Key("by-score")
				}
				binding := fmt.Sprintf("%s %q %q %v %v", r.Index, r.Min, r.Max, r.ByScore, r.Desc)
				var got []string
				token, pages := "", 0
				for ; pages == 0 || token != ""; pages++ {
					r.After = ""
					if token != "" {
						var err error
						if r.After, err = tokens.Decode(binding, token); err != nil {
							t.Fatalf("page %d: token: %v", pages, err)
						}
					}
					p, err := commit.Members(ctx, c.rdb, r)
					if err != nil {
						t.Fatalf("page %d: %v", pages, err)
					}
					if len(p.Items) > tt.limit || (p.Next != "" && len(p.Items) != tt.limit) {
						t.Fatalf("page %d: got %d items with next %q, want at most %d, and %d unless last", pages, len(p.Items), p.Next, tt.limit, tt.limit)
					}
					got = append(got, p.Items...)
					if p.Next != "" {
						token = tokens.Encode(binding, p.Next)
						if _, err := tokens.Decode(binding+" other", token); !errors.Is(err, pagetoken.ErrInvalid) {
							t.Errorf("another query's token: got %v, want %v", err, pagetoken.ErrInvalid)
						}
						tampered := []byte(token)
						tampered[len(tampered)/2] ^= 1
						if _, err := tokens.Decode(binding, string(tampered)); !errors.Is(err, pagetoken.ErrInvalid) {
							t.Errorf("tampered token: got %v, want %v", err, pagetoken.ErrInvalid)
						}
					} else {
						token = ""
					}
				}
				want := ordered(model(), r, tt.keep)
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("members over %d pages (-want +got):\n%s", pages, diff)
				}
			})
		}
	}
}

// TestPageAfterTheCursorChanged: the member a cursor names is deleted, or moved, before the next
// page; the next page still starts right after where it stood, skipping and repeating nothing.
func TestPageAfterTheCursorChanged(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		for _, tt := range []struct {
			name   string
			r      commit.Range
			change func(w *commit.Write, index, cursor string)
		}{
			{"kept", commit.Range{ByScore: true}, func(*commit.Write, string, string) {}},
			{"deleted", commit.Range{ByScore: true}, func(w *commit.Write, index, cursor string) { w.ZRem(index, cursor) }},
			{"deleted, descending", commit.Range{ByScore: true, Desc: true}, func(w *commit.Write, index, cursor string) { w.ZRem(index, cursor) }},
			{"moved", commit.Range{ByScore: true}, func(w *commit.Write, index, cursor string) { w.ZAdd(index, 4, cursor) }},
			{"moved, descending", commit.Range{ByScore: true, Desc: true}, func(w *commit.Write, index, cursor string) { w.ZAdd(index, -9, cursor) }},
			{"deleted, by member", commit.Range{Desc: true}, func(w *commit.Write, index, cursor string) { w.ZRem(index, cursor) }},
		} {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				ms := model()
				r := tt.r
				r.Index, r.Limit = c.scope.Key("changed", tt.name), 9
				fill(t, c.rdb, r.Index, ms, r.ByScore)
				first, err := commit.Members(ctx, c.rdb, r)
				if err != nil {
					t.Fatal(err)
				}
				cursor := first.Items[len(first.Items)-1]
				i := slices.IndexFunc(ms, func(m member) bool { return m.name == cursor })
				w := commit.New()
				tt.change(w, r.Index, cursor)
				if err := w.Run(ctx, c.rdb); err != nil {
					t.Fatal(err)
				}
				r.After, r.Limit = first.Next, len(ms)
				second, err := commit.Members(ctx, c.rdb, r)
				if err != nil {
					t.Fatal(err)
				}
				// What follows the cursor's old place, in the model as it was, less the cursor.
				all := ordered(ms, r, func(member) bool { return true })
				want := slices.DeleteFunc(slices.Clone(all[slices.Index(all, ms[i].name)+1:]), func(n string) bool { return n == cursor })
				got := slices.DeleteFunc(second.Items, func(n string) bool { return n == cursor })
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("next page (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestListReadsTheResourcesOfAPage: resources in index order, a deleted one left out while the
// cursor still moves on.
func TestListReadsTheResourcesOfAPage(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			index := c.scope.Key("things")
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				c.thing(t, id, "value of "+id, commit.Entry{Index: index, Member: "sort\x00" + id})
			}
			if err := commit.New().Delete(c.scope.Key("thing", "c")).Run(ctx, c.rdb); err != nil {
				t.Fatal(err)
			}
			keyOf := func(m string) string { return c.scope.Key("thing", m[len("sort\x00"):]) }
			newMsg := func() *wrapperspb.StringValue { return &wrapperspb.StringValue{} }
			got, err := commit.List(ctx, c.rdb, commit.Range{Index: index, Desc: true, Limit: 3}, keyOf, newMsg)
			if err != nil {
				t.Fatal(err)
			}
			want := page.Page[*wrapperspb.StringValue]{
				Items: []*wrapperspb.StringValue{wrapperspb.String("value of e"), wrapperspb.String("value of d")},
				Next:  "sort\x00c",
			}
			if diff := gocmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("first page (-want +got):\n%s", diff)
			}
			empty, err := commit.List(ctx, c.rdb, commit.Range{Index: c.scope.Key("none"), Limit: 3}, keyOf, newMsg)
			if err != nil || len(empty.Items) != 0 || empty.Next != "" {
				t.Errorf("page of an empty index: got %v, %v, want nothing", empty, err)
			}
		})
	}
}

func TestPageRefusesABadRange(t *testing.T) {
	rdb := redistest.Client(t)
	for _, r := range []commit.Range{
		{Index: "crm:{p1}:svc:t:ix", Limit: 0},
		{Index: "crm:{p1}:svc:t:ix", ByScore: true, After: "no-score", Limit: 3},
	} {
		if _, err := commit.Members(context.Background(), rdb, r); err == nil {
			t.Errorf("Members(%+v): got no error, want one", r)
		}
	}
}
