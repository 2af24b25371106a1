package commit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
)

// TestCreate: a write's Creates store their records, and a Create over anything at its key (a
// record, or a hash that holds no record) refuses the whole write, naming that key, with nothing
// written; a record created is read and updated as any other.
func TestCreate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stream := f.scope.Stream()
	create := func(ids ...string) error {
		w := commit.New()
		for _, id := range ids {
			w.Create(f.lead(id), wrapperspb.String("lead "+id), "1")
		}
		return w.Append(stream, []byte("created")).Run(ctx, f.rdb)
	}
	if err := create("a", "b"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		got, err := commit.Get(ctx, f.rdb, f.lead(id), &wrapperspb.StringValue{}, nil)
		if err != nil || got.GetValue() != "lead "+id {
			t.Fatalf("created %s: %v, %v; want lead %s", id, got, err, id)
		}
	}
	if err := f.rdb.HSet(ctx, f.lead("shared"), "customer", "c1").Err(); err != nil {
		t.Fatal(err)
	}
	for _, taken := range []string{"b", "shared"} {
		before := state(t, f.rdb, f.lead("c"), f.lead(taken), stream)
		var v *commit.VersionError
		if err := create("c", taken); !errors.As(err, &v) || v.Key != f.lead(taken) || !errors.Is(err, commit.ErrVersionMismatch) {
			t.Fatalf("create over %s: %v, want a VersionError for %s", taken, err, f.lead(taken))
		}
		if diff := cmp.Diff(before, state(t, f.rdb, f.lead("c"), f.lead(taken), stream)); diff != "" {
			t.Errorf("a refused create over %s wrote (-before +after):\n%s", taken, diff)
		}
	}
	if err := commit.New().Save(f.lead("a"), wrapperspb.String("lead a, 2"), "1", "2").Run(ctx, f.rdb); err != nil {
		t.Fatalf("update of a created record: %v", err)
	}
}

// TestConcurrentCreatesOfOneKey: of 20 concurrent creates of one key exactly one is made.
func TestConcurrentCreatesOfOneKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			errs[i] = commit.New().Create(f.lead("x"), wrapperspb.String("x"), "1").HIncrBy(f.scope.Key("made"), "n", 1).Run(ctx, f.rdb)
		})
	}
	wg.Wait()
	made := 0
	for _, err := range errs {
		switch {
		case err == nil:
			made++
		case !errors.Is(err, commit.ErrVersionMismatch):
			t.Errorf("a create that lost: %v, want ErrVersionMismatch", err)
		}
	}
	if n, _ := f.rdb.HGet(ctx, f.scope.Key("made"), "n").Int(); made != 1 || n != 1 {
		t.Fatalf("%d creates succeeded and %d counted, want 1 and 1", made, n)
	}
}
