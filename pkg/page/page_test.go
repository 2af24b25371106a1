package page_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/crmcycle/crm/pkg/page"
)

// numbers is a list of 0..n-1 paged by a cursor that is the last number read.
func numbers(n int) func(context.Context, page.Request) (page.Page[int], error) {
	return func(_ context.Context, r page.Request) (page.Page[int], error) {
		start := 0
		if r.After != "" {
			last, _ := strconv.Atoi(r.After)
			start = last + 1
		}
		var p page.Page[int]
		for i := start; i < n && len(p.Items) < r.Limit; i++ {
			p.Items = append(p.Items, i)
		}
		if end := start + len(p.Items); end < n {
			p.Next = strconv.Itoa(end - 1)
		}
		return p, nil
	}
}

func TestEachReadsEveryPageOnce(t *testing.T) {
	for _, n := range []int{0, 1, 7, 21} {
		var got []int
		sends := 0
		err := page.Each(context.Background(), 7, numbers(n), func(items []int) error {
			sends++
			if len(items) > 7 {
				t.Errorf("a page of %d items, want at most 7", len(items))
			}
			got = append(got, items...)
			return nil
		})
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		if err != nil || !slices.Equal(got, want) || sends != (n+6)/7 {
			t.Errorf("n=%d: %v in %d sends, %v; want 0..%d in %d", n, got, sends, err, n-1, (n+6)/7)
		}
	}
	stop := errors.New("client gone")
	if err := page.Each(context.Background(), 3, numbers(10), func([]int) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("a failed send: %v, want it back", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := page.Each(ctx, 3, numbers(10), func([]int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled export: %v, want context.Canceled", err)
	}
}
