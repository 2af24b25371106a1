package operations

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// clock is a settable clock, so that many operations share a creation ms.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// started is an operation as the test saw it start: its name and creation ms.
type started struct {
	name string
	ms   int64
}

// startMany starts n operations in each store, a few per ms, the stores taking turns, and
// returns them newest first as the list promises: by ms, then by id (descending), sorted here
// from the test's own record rather than from the stores.
func startMany(t *testing.T, c *clock, tenant string, n int, stores ...*Store) []started {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.UnixMilli(1_765_000_000_000)
	var all []started
	for i := range n {
		for _, s := range stores {
			if rng.IntN(3) == 0 {
				at = at.Add(time.Duration(1+rng.IntN(5)) * time.Millisecond)
			}
			c.set(at.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)) // same ms, other µs
			meta := &typev1.ImportMetadata{RowsRead: int64(i)}
			r, err := s.Start(ctx, tenant, meta)
			if err != nil {
				t.Fatal(err)
			}
			// As the importer does, Finish gets the metadata Start filled in (its create time).
			meta.State = typev1.ImportState_IMPORT_STATE_SUCCEEDED
			if err := r.Finish(ctx, meta, nil); err != nil {
				t.Fatal(err)
			}
			all = append(all, started{name: r.Name(), ms: at.UnixMilli()})
		}
	}
	id := func(name string) string { _, v, _ := strings.Cut(name, "."); return v }
	slices.SortFunc(all, func(a, b started) int {
		if a.ms != b.ms {
			return int(b.ms - a.ms)
		}
		return strings.Compare(id(b.name), id(a.name))
	})
	return all
}

func newStore(t *testing.T, service string, c *clock) *Store {
	t.Helper()
	space, err := keyspace.Open(context.Background(), redistest.Client(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	return New(redistest.Client(t), space, service, c.now)
}

// readAllPages pages through s's list limit at a time and returns the names in list order.
func readAllPages(t *testing.T, s *Store, tenant string, limit int) []string {
	t.Helper()
	var names []string
	req := page.Request{Limit: limit}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("limit %d: the list does not end", limit)
		}
		p, err := s.List(context.Background(), tenant, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > limit {
			t.Fatalf("limit %d: a page of %d", limit, len(p.Items))
		}
		if p.Next != "" && len(p.Items) != limit {
			t.Fatalf("limit %d: a page of %d with a next page", limit, len(p.Items))
		}
		for _, op := range p.Items {
			names = append(names, op.GetName())
		}
		if p.Next == "" {
			return names
		}
		req.After = p.Next
	}
}

func TestListPagesEveryOperationOnceNewestFirst(t *testing.T) {
	c := &clock{}
	s := newStore(t, "test", c)
	tenant := redistest.Tenant(t)
	want := startMany(t, c, tenant, 230, s)
	var wantNames []string
	for _, o := range want {
		wantNames = append(wantNames, o.name)
	}
	for _, limit := range []int{1, 7, 100, 230, 1000} {
		if got := readAllPages(t, s, tenant, limit); !slices.Equal(got, wantNames) {
			t.Errorf("limit %d: %s", limit, diff(got, wantNames))
		}
	}

	// Operations that expired (Retention) are left out and their index members removed, so a
	// page still ends on an operation it returns.
	ctx := context.Background()
	gone := map[string]bool{}
	for i := 3; i < len(want); i += 4 {
		id, _ := s.id(want[i].name)
		if err := s.rdb.Del(ctx, s.key(tenant, id)).Err(); err != nil {
			t.Fatal(err)
		}
		gone[want[i].name] = true
	}
	wantNames = slices.DeleteFunc(wantNames, func(n string) bool { return gone[n] })
	if got := readAllPages(t, s, tenant, 10); !slices.Equal(got, wantNames) {
		t.Errorf("after expiry: %s", diff(got, wantNames))
	}
	if n, err := s.rdb.ZCard(ctx, s.index(tenant)).Result(); err != nil || n != int64(len(wantNames)) {
		t.Errorf("index after expiry: %d members, %v; want %d", n, err, len(wantNames))
	}
}

// TestCursorContinuesAnotherServicesList: a cursor is a position in time, so one service's cursor
// continues another's list at the same place, which the gateway's merge of the lists relies on.
func TestCursorContinuesAnotherServicesList(t *testing.T) {
	c := &clock{}
	a, b := newStore(t, "a", c), newStore(t, "b", c)
	tenant := redistest.Tenant(t)
	all := startMany(t, c, tenant, 40, a, b)
	// a's part of the merged order, and each b operation's place in it.
	for i, o := range all {
		if !strings.HasPrefix(o.name, "operations/b.") {
			continue
		}
		var want []string
		for _, later := range all[i+1:] {
			if strings.HasPrefix(later.name, "operations/a.") {
				want = append(want, later.name)
			}
		}
		_, id, _ := strings.Cut(o.name, ".")
		p, err := a.List(context.Background(), tenant, page.Request{After: Cursor(o.ms, id), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, op := range p.Items {
			got = append(got, op.GetName())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("a's list after %s (%d): %s", o.name, o.ms, diff(got, want))
		}
	}
}

// diff says where got first differs from want.
func diff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%d names, want %d; the first difference at %d: %s, want %s", len(got), len(want), i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d names, want %d (the shorter is a prefix of the other)", len(got), len(want))
}

// TestCancelSaysWhetherItAsked: only the call that sets a running operation's cancel flag says it
// changed something; cancelling it again, or cancelling a done one, changes nothing and says so
// (the importer records an audit entry only for a change), and the done one stays as it ended.
func TestCancelSaysWhetherItAsked(t *testing.T) {
	c := &clock{t: time.Now()}
	s := newStore(t, "marketing", c)
	ctx := context.Background()
	running, err := s.Start(ctx, "t1", &typev1.ImportMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	name := s.Name(running.id)
	for i, want := range []bool{true, false} {
		if _, changed, err := s.Cancel(ctx, "t1", name); err != nil || changed != want {
			t.Errorf("cancel %d of a running operation: changed %v, %v; want %v", i+1, changed, err, want)
		}
	}
	running.stopRenewal()

	meta := &typev1.ImportMetadata{}
	done, err := s.Start(ctx, "t1", meta)
	if err != nil {
		t.Fatal(err)
	}
	meta.State = typev1.ImportState_IMPORT_STATE_SUCCEEDED
	if err := done.Finish(ctx, meta, nil); err != nil {
		t.Fatal(err)
	}
	op, changed, err := s.Cancel(ctx, "t1", s.Name(done.id))
	if err != nil || changed || !op.GetDone() || op.GetError() != nil {
		t.Errorf("cancel of a succeeded operation: %v, changed %v, %v; want it unchanged", op, changed, err)
	}
	if cancelled, _ := s.rdb.HExists(ctx, s.key("t1", done.id), "cancel").Result(); cancelled {
		t.Error("cancel of a succeeded operation set its cancel flag")
	}
	if _, _, err := s.Cancel(ctx, "t1", s.Name("0190a0b0-0000-7000-8000-000000000000")); err != ErrNotFound {
		t.Errorf("cancel of an unknown operation: %v, want ErrNotFound", err)
	}
}
