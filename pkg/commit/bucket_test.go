package commit_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	guuid "github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
)

// bucketKeys are the keys of the bucketed index: its directory and buckets.
func bucketKeys(t *testing.T, f fixture, index string) []string {
	t.Helper()
	keys, err := f.rdb.Keys(context.Background(), index+"#*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// bucketMax is bucket.lua's BUCKET_MAX: the most members a bucket written by this version holds.
const bucketMax = 64

// checkBuckets checks that every bucket is listpack-encoded and holds at most bucketMax members.
func checkBuckets(t *testing.T, f fixture, index string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range bucketKeys(t, f, index) {
		if strings.HasSuffix(k, "#d") {
			continue
		}
		n := f.rdb.ZCard(ctx, k).Val()
		if enc := f.rdb.ObjectEncoding(ctx, k).Val(); enc != "listpack" || n > bucketMax {
			t.Errorf("bucket %s is %s with %d members, want listpack with at most %d", k, enc, n, bucketMax)
		}
	}
}

// walk reads the whole range page by page.
func walk(t *testing.T, f fixture, r commit.Range) []string {
	t.Helper()
	var out []string
	for pages := 0; ; pages++ {
		p, err := commit.Members(context.Background(), f.rdb, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > r.Limit {
			t.Fatalf("a page of %d items, limit %d", len(p.Items), r.Limit)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		r.After = p.Next
	}
}

func add(t *testing.T, f fixture, index string, members ...string) {
	t.Helper()
	w := commit.New()
	for _, m := range members {
		w.BucketAdd(index, m)
	}
	if err := w.Run(context.Background(), f.rdb); err != nil {
		t.Fatal(err)
	}
}

// A bucketed index reads like one sorted set ordered by member, in pages, both ways and within a
// range, while its buckets stay listpack-encoded; removing every member leaves no key.
func TestBucketedIndexPagesLikeOneSortedSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	index := f.scope.Key("idx", "bucketed")
	// 1,500 ids: half appended in time order (UUIDv7), half in random order, packed to 16 bytes.
	var want []string
	for range 750 {
		want = append(want, commit.PackUUID(guuid.Must(guuid.NewV7()).String()))
	}
	for i := 0; i < len(want); i += 50 {
		add(t, f, index, want[i:i+50]...)
	}
	for range 750 {
		want = append(want, commit.PackUUID(guuid.NewString()))
	}
	shuffled := slices.Clone(want[750:])
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, m := range shuffled {
		add(t, f, index, m)
	}
	add(t, f, index, want[3], want[900]) // adding a member again changes nothing
	slices.Sort(want)                    // bytewise, as Redis orders members
	checkBuckets(t, f, index)
	if n := len(bucketKeys(t, f, index)); n < 1500/128+1 {
		t.Fatalf("%d keys for 1,500 members: not bucketed", n)
	}

	if got := walk(t, f, commit.Range{Index: index, Bucketed: true, Limit: 7}); !slices.Equal(got, want) {
		t.Fatalf("ascending walk: %d members, want %d in order", len(got), len(want))
	}
	desc := slices.Clone(want)
	slices.Reverse(desc)
	if got := walk(t, f, commit.Range{Index: index, Bucketed: true, Desc: true, Limit: 50}); !slices.Equal(got, desc) {
		t.Fatalf("descending walk: %d members, want %d in reverse order", len(got), len(want))
	}
	lo, hi := want[200], want[1333]
	inRange := want[201:1333] // (lo, hi)
	got := walk(t, f, commit.Range{Index: index, Bucketed: true, Min: "(" + lo, Max: "(" + hi, Limit: 33})
	if !slices.Equal(got, inRange) {
		t.Fatalf("range (lo, hi): %d members, want %d", len(got), len(inRange))
	}
	got = walk(t, f, commit.Range{Index: index, Bucketed: true, Min: "[" + lo, Max: "[" + hi, Desc: true, Limit: 64})
	if r := slices.Clone(want[200:1334]); !slices.Equal(got, reversed(r)) {
		t.Fatalf("range [lo, hi] descending: %d members, want %d", len(got), len(r))
	}
	if n, err := commit.BucketCount(ctx, f.rdb, index).Int64(); err != nil || n != int64(len(want)) {
		t.Fatalf("count: %d, %v; want %d", n, err, len(want))
	}

	// Remove every other member, then the rest.
	w := commit.New()
	var kept []string
	for i, m := range want {
		if i%2 == 0 {
			w.BucketRem(index, m)
		} else {
			kept = append(kept, m)
		}
	}
	if err := w.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, f, commit.Range{Index: index, Bucketed: true, Desc: true, Limit: 100}); !slices.Equal(got, reversed(kept)) {
		t.Fatalf("after removing half: %d members, want %d", len(got), len(kept))
	}
	w = commit.New()
	for _, m := range kept {
		w.BucketRem(index, m)
	}
	if err := w.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	if keys := bucketKeys(t, f, index); len(keys) != 0 {
		t.Fatalf("an emptied index left keys %q", keys)
	}
	if p, err := commit.Members(ctx, f.rdb, commit.Range{Index: index, Bucketed: true, Limit: 5}); err != nil || len(p.Items) != 0 {
		t.Fatalf("page of an empty index: %v, %v", p, err)
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// Writers adding to one index at once, so that buckets split under them, lose no member.
func TestConcurrentBucketAddsLoseNothing(t *testing.T) {
	f := newFixture(t)
	index := f.scope.Key("idx", "concurrent")
	const writers, each = 8, 100
	all := make([][]string, writers)
	var wg sync.WaitGroup
	for i := range writers {
		for range each {
			all[i] = append(all[i], commit.PackUUID(guuid.Must(guuid.NewV7()).String()))
		}
		wg.Go(func() {
			for _, m := range all[i] {
				if err := commit.New().BucketAdd(index, m).Run(context.Background(), f.rdb); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := slices.Concat(all...)
	slices.Sort(want)
	if got := walk(t, f, commit.Range{Index: index, Bucketed: true, Limit: 99}); !slices.Equal(got, want) {
		t.Fatalf("%d members after concurrent adds, want %d", len(got), len(want))
	}
	checkBuckets(t, f, index)
}

// A bucketed unique index maps each value to one owner: a claim by another owner is refused with
// the owner (and its record when asked) and changes nothing; a release frees the value.
func TestBucketUnique(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	index := f.scope.Key("idx", "emails")
	owner, other := guuid.Must(guuid.NewV7()).String(), guuid.Must(guuid.NewV7()).String()
	if err := commit.New().Put(f.lead(owner), mustMarshal(t, wrapperspb.String("the owner")), "1").
		BucketUnique(index, "a@example.com", owner).Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	// Many other values, so that the index has several buckets.
	w := commit.New()
	var values []string
	for i := range 400 {
		v := fmt.Sprintf("%s-%d@example.org", guuid.NewString()[:i%20+1], i)
		values = append(values, v)
		if i%10 == 7 {
			w.BucketUnique(index, v, fmt.Sprint("id-", i)) // an owner that is no UUID is kept as it is
		} else {
			w.BucketUnique(index, v, guuid.Must(guuid.NewV7()).String())
		}
	}
	if err := w.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	checkBuckets(t, f, index)
	if err := commit.New().BucketUnique(index, "a@example.com", owner).Run(ctx, f.rdb); err != nil {
		t.Fatalf("the owner claiming its value again: %v", err)
	}

	before := state(t, f.rdb, append(bucketKeys(t, f, index), f.lead(other))...)
	err := commit.New().Put(f.lead(other), mustMarshal(t, wrapperspb.String("other")), "1").
		BucketUniqueOrRead(index, "a@example.com", other, f.lead("")).Run(ctx, f.rdb)
	conflict, ok := errors.AsType[*commit.UniqueConflictError](err)
	if !ok || conflict.Owner != owner || !errors.Is(err, commit.ErrAlreadyExists) {
		t.Fatalf("a claim of a taken value: got %v, want a conflict naming %s", err, owner)
	}
	rec := &wrapperspb.StringValue{}
	if v, found, err := conflict.DecodeOwner(rec); err != nil || !found || v != "1" || rec.GetValue() != "the owner" {
		t.Fatalf("the owner's record with the conflict: %v %v %v %q", v, found, err, rec.GetValue())
	}
	if diff := cmp.Diff(before, state(t, f.rdb, append(bucketKeys(t, f, index), f.lead(other))...)); diff != "" {
		t.Fatalf("a refused claim changed state (-before +after):\n%s", diff)
	}

	// Expecting a value free: refused, naming the owner, when taken; claims nothing when free.
	err = commit.New().Put(f.lead(other), mustMarshal(t, wrapperspb.String("other")), "1").
		BucketExpectFree(index, "a@example.com").Run(ctx, f.rdb)
	if conflict, ok := errors.AsType[*commit.UniqueConflictError](err); !ok || conflict.Owner != owner || conflict.Index != index {
		t.Fatalf("expecting a taken value free: got %v, want a conflict naming %s", err, owner)
	}
	if diff := cmp.Diff(before, state(t, f.rdb, append(bucketKeys(t, f, index), f.lead(other))...)); diff != "" {
		t.Fatalf("a refused expectation changed state (-before +after):\n%s", diff)
	}
	if err := commit.New().BucketExpectFree(index, "nobody@example.com").Run(ctx, f.rdb); err != nil {
		t.Fatalf("expecting a free value free: %v", err)
	}
	if diff := cmp.Diff(before, state(t, f.rdb, append(bucketKeys(t, f, index), f.lead(other))...)); diff != "" {
		t.Fatalf("an expectation changed state (-before +after):\n%s", diff)
	}

	owners, err := commit.BucketOwners(ctx, f.rdb, index, "a@example.com", "nobody@example.com", values[7])
	if err != nil || !slices.Equal(owners, []string{owner, "", "id-7"}) {
		t.Fatalf("owners: %q, %v", owners, err)
	}
	if err := commit.New().BucketRelease(index, "a@example.com").
		BucketUnique(index, "b@example.com", owner).Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	if err := commit.New().BucketUnique(index, "a@example.com", other).Run(ctx, f.rdb); err != nil {
		t.Fatalf("a claim of a released value: %v", err)
	}
	owners, _ = commit.BucketOwners(ctx, f.rdb, index, "a@example.com", "b@example.com")
	if !slices.Equal(owners, []string{other, owner}) {
		t.Fatalf("owners after the release and claims: %q", owners)
	}
	// The index keeps keys of values, not values: no key name or member holds an e-mail.
	for _, k := range bucketKeys(t, f, index) {
		members, _ := f.rdb.ZRange(ctx, k, 0, -1).Result()
		if text := k + strings.Join(members, ""); strings.Contains(text, "@example.") {
			t.Fatalf("the unique index stores a value in %s", k)
		}
	}
	if n, _ := commit.BucketCount(ctx, f.rdb, index).Int64(); n != 402 {
		t.Fatalf("%d entries, want 402 (one per value)", n)
	}
}

// Concurrent claims of one value: exactly one wins.
func TestConcurrentBucketClaimsOfOneValue(t *testing.T) {
	f := newFixture(t)
	index := f.scope.Key("idx", "race")
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 10 {
		wg.Go(func() {
			err := commit.New().BucketUnique(index, "same@example.com", guuid.Must(guuid.NewV7()).String()).Run(context.Background(), f.rdb)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if !errors.Is(err, commit.ErrAlreadyExists) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, _ := commit.BucketCount(context.Background(), f.rdb, index).Int64(); won != 1 || n != 1 {
		t.Fatalf("%d claims won, %d entries; want 1 and 1", won, n)
	}
}

func TestPackUUID(t *testing.T) {
	id := guuid.Must(guuid.NewV7()).String()
	if p := commit.PackUUID(id); len(p) != 16 || commit.UnpackUUID(p) != id {
		t.Fatalf("PackUUID(%s) = %x, back %s", id, p, commit.UnpackUUID(p))
	}
	for _, s := range []string{"", "l1", strings.ToUpper(id), id[:35] + "g", id + "0"} {
		if p := commit.PackUUID(s); p != s {
			t.Errorf("PackUUID(%q) = %q, want it unchanged", s, p)
		}
	}
	// Packed ids sort as their text.
	a, b := "01890000-0000-7000-8000-00000000000a", "01890000-0000-7000-8000-0000000000a0"
	if (commit.PackUUID(a) < commit.PackUUID(b)) != (a < b) {
		t.Fatal("packed order differs from the text's")
	}
}

// rebucket rewrites a bucketed index into buckets of size members each, in order, as a version
// with another bucket size would have left it.
func rebucket(t *testing.T, f fixture, index string, size int) {
	t.Helper()
	ctx := context.Background()
	members := walk(t, f, commit.Range{Index: index, Bucketed: true, Limit: 100})
	if err := f.rdb.Del(ctx, bucketKeys(t, f, index)...).Err(); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < len(members); from += size {
		chunk := members[from:min(from+size, len(members))]
		bound := ""
		if from > 0 {
			bound = chunk[0]
		}
		z := make([]redis.Z, len(chunk))
		for i, m := range chunk {
			z[i] = redis.Z{Member: m}
		}
		if err := f.rdb.ZAdd(ctx, index+"#d", redis.Z{Member: bound}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.rdb.ZAdd(ctx, index+"#b"+hex.EncodeToString([]byte(bound)), z...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Buckets of 128 members, as the version before bucketMax 64 left them, keep working: a batch's
// claims find the values in them, and its adds, in order and within them, split them; the index
// still reads as one sorted set.
func TestOldFullBucketsKeepWorking(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ordered, emails := f.scope.Key("idx", "ordered"), f.scope.Key("idx", "emails")
	var want []string
	w := commit.New()
	for i := range 256 {
		want = append(want, fmt.Sprintf("m%04d", 2*i))
		w.BucketAdd(ordered, want[i]).BucketUnique(emails, fmt.Sprintf("v%d@example.com", i), fmt.Sprintf("l%04d", i))
	}
	if err := w.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	for _, index := range []string{ordered, emails} {
		rebucket(t, f, index, 128)
		if n := f.rdb.ZCard(ctx, index+"#d").Val(); n != 2 {
			t.Fatalf("%s: %d buckets of the old size, want 2", index, n)
		}
	}

	var writes []*commit.Write
	for i := range 60 {
		in, after := fmt.Sprintf("m%04d", 2*i+1), fmt.Sprintf("m%04d", 512+i)
		want = append(want, in, after)
		writes = append(writes, commit.New().BucketAdd(ordered, in).BucketAdd(ordered, after).
			BucketUnique(emails, fmt.Sprintf("v%d@example.com", 256+i), fmt.Sprintf("l%04d", 256+i)))
	}
	// values in the old buckets: their owners' claims change nothing, another owner's is refused
	writes = append(writes, commit.New().BucketUnique(emails, "v5@example.com", "l0005"),
		commit.New().BucketUnique(emails, "v200@example.com", "x0001").BucketAdd(ordered, "m9999"))
	errs, err := commit.RunBatch(ctx, f.rdb, writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs[:len(errs)-1] {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if owner := outcome(errs[len(errs)-1], f.tenant); owner != "unique l0200" {
		t.Fatalf("a claim of an old bucket's value by another owner: %s, want unique l0200", owner)
	}

	slices.Sort(want)
	if got := walk(t, f, commit.Range{Index: ordered, Bucketed: true, Limit: 50}); !slices.Equal(got, want) {
		t.Fatalf("%d members after the adds, want %d in order", len(got), len(want))
	}
	if n := f.rdb.ZCard(ctx, emails+"#d").Val(); n < 3 {
		t.Errorf("the e-mail index has %d buckets after 60 claims into full ones: not split", n)
	}
	for _, index := range []string{ordered, emails} {
		checkBounds(t, f, index)
		for _, k := range bucketKeys(t, f, index) {
			if n := f.rdb.ZCard(ctx, k).Val(); !strings.HasSuffix(k, "#d") && n > 128 {
				t.Errorf("bucket %s has %d members", k, n)
			}
		}
	}
	if n := f.rdb.ZCard(ctx, ordered+"#b").Val(); n > bucketMax {
		t.Errorf("the first old bucket, added to within, still has %d members", n)
	}
}
