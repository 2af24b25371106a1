package commit_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
)

// TestListWhereKeepsWhatMatchesInBoundedPages: 60 things, every seventh kept; paging with short
// pages and a small budget returns exactly the kept ones in index order, each once, and no
// request examines more than its budget plus one page.
func TestListWhereKeepsWhatMatchesInBoundedPages(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			index := c.scope.Key("where")
			var want []string
			for i := range 60 {
				id := fmt.Sprintf("%03d", i)
				c.thing(t, id, strconv.Itoa(i), commit.Entry{Index: index, Member: "k" + id + "\x00" + id})
				if i%7 == 0 {
					want = append(want, strconv.Itoa(i))
				}
			}
			keyOf := func(m string) string { return c.scope.Key("thing", m[len(m)-3:]) }
			newMsg := func() *wrapperspb.StringValue { return &wrapperspb.StringValue{} }
			for _, tt := range []struct{ limit, budget int }{{3, 6}, {4, 100}, {100, 100}, {1, 1}} {
				var got []string
				r := commit.Range{Index: index, Limit: tt.limit}
				for pages := 0; ; pages++ {
					examined := 0
					p, err := commit.ListWhere(ctx, c.rdb, r, keyOf, newMsg, func(_ string, v *wrapperspb.StringValue) bool {
						examined++
						n, _ := strconv.Atoi(v.GetValue())
						return n%7 == 0
					}, tt.budget)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Items) > tt.limit || examined > tt.budget+tt.limit {
						t.Fatalf("limit %d budget %d: a page of %d items examined %d", tt.limit, tt.budget, len(p.Items), examined)
					}
					for _, v := range p.Items {
						got = append(got, v.GetValue())
					}
					if p.Next == "" {
						break
					}
					if pages > 100 {
						t.Fatal("no end")
					}
					r.After = p.Next
				}
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("limit %d budget %d (-want +got):\n%s", tt.limit, tt.budget, diff)
				}
			}
			if _, err := commit.ListWhere(ctx, c.rdb, commit.Range{Index: index, ByScore: true, Limit: 2}, keyOf, newMsg,
				func(string, *wrapperspb.StringValue) bool { return true }, 10); err == nil {
				t.Error("a score range: got no error, want one")
			}
		})
	}
}
