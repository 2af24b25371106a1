package commit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
)

// batchScenario is a bulk write of n rows on scope s, with every outcome a row can have: creates
// (a record, a bucketed unique e-mail, members added in order and at random to bucketed indexes,
// which split their buckets, counters, a sorted set and a hash that rows write the same members
// and fields of, an event), repeated creates (stale), e-mails taken by an
// earlier row of the same batch (unique conflict), redeliveries (once), removals that empty
// buckets (the directory shrinks while later rows add again), e-mails passed to other owners, and
// a row that fails inside Redis (WRONGTYPE) after some of its effects.
func batchScenario(s keyspace.Scope, n int) []*commit.Write {
	rnd := rand.New(rand.NewPCG(1, 2))
	ordered, random, emails := s.Key("idx", "ordered"), s.Key("idx", "random"), s.Key("idx", "emails")
	writes := make([]*commit.Write, 0, n)
	for i := range n {
		id := fmt.Sprintf("l%06d", i)
		w := commit.New()
		switch {
		case i%50 == 7: // creates an earlier row's record again
			id = fmt.Sprintf("l%06d", i-1)
		case i%40 == 9: // takes an earlier row's e-mail
			w.BucketUnique(emails, fmt.Sprintf("p%d@example.com", i-3), id)
		case i%60 == 11: // a redelivery of an earlier row
			w.Once(s.Key("done", fmt.Sprintf("l%06d", i-2)), 0)
		case i%97 == 13: // effects, then a command on a key of the wrong type
			w.HIncrBy(s.Key("stats"), "broken", 1).ZAdd(s.Key("lead", fmt.Sprintf("l%06d", i-1)), 1, "x")
			writes = append(writes, w)
			continue
		case i >= n/2 && i < n/2+40: // removals: the first 200 ordered members, 5 a row
			for j := range 5 {
				w.BucketRem(ordered, fmt.Sprintf("m%06d", (i-n/2)*5+j))
			}
			w.BucketRelease(emails, fmt.Sprintf("p%d@example.com", i-n/2))
		case i > n/2+40 && i%2 == 0: // an earlier row's e-mail is released...
			w.BucketRelease(emails, fmt.Sprintf("p%d@example.com", i-n/2))
		case i > n/2+40: // ... and passes to an owner ordered before the old one
			w.BucketUnique(emails, fmt.Sprintf("p%d@example.com", i-1-n/2), fmt.Sprintf("a%06d", i))
		}
		w.ExpectVersion(s.Key("lead", id), "").
			BucketUnique(emails, fmt.Sprintf("p%d@example.com", i), id).
			Once(s.Key("done", id), 0).
			Put(s.Key("lead", id), []byte("data of "+id), "1").
			BucketAdd(ordered, fmt.Sprintf("m%06d", i)).
			BucketAdd(random, fmt.Sprintf("r%08d", rnd.IntN(100_000_000))).
			HIncrBy(s.Key("stats"), "leads", 1).
			HIncrBy(s.Key("stats"), "net", int64(i%5)-2).
			ZAdd(s.Key("idx", "plain"), float64(i%7), fmt.Sprintf("z%d", i%300)).
			HSet(s.Key("map"), fmt.Sprintf("f%d", i%200), id).
			Append(s.Stream(), []byte("created "+id))
		writes = append(writes, w)
	}
	return writes
}

// outcome names the kind of a write's error, the same for equal outcomes of two tenants.
func outcome(err error, tenant string) string {
	var conflict *commit.UniqueConflictError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &conflict):
		return "unique " + conflict.Owner
	case errors.Is(err, commit.ErrVersionMismatch):
		return "stale"
	case errors.Is(err, commit.ErrAlreadyApplied):
		return "once"
	case strings.Contains(err.Error(), "WRONGTYPE"):
		return "wrongtype"
	}
	return strings.ReplaceAll(err.Error(), tenant, "T")
}

// tenantState is every key of the tenant, named without the tenant, with its value (a stream's
// entries without their ids).
func tenantState(t *testing.T, rdb redis.UniversalClient, tenant string) map[string]any {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*"+tenant+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, ":warm") })
	out := map[string]any{}
	for k, v := range state(t, rdb, keys...) {
		if msgs, ok := v.([]redis.XMessage); ok {
			values := make([]map[string]any, len(msgs))
			for i, m := range msgs {
				values[i] = m.Values
			}
			v = values
		}
		out[k[strings.LastIndex(k, tenant)+len(tenant):]] = v
	}
	return out
}

// TestRunBatchLikeRun: a batch does exactly what running its writes one by one does, outcome by
// outcome and byte by byte (records, bucketed indexes through splits and removals, counters,
// events), in a script call per BatchWrites writes.
func TestRunBatchLikeRun(t *testing.T) {
	ctx := context.Background()
	const n = 700
	one, batched := newFixture(t), newFixture(t)
	var want []string
	for _, w := range batchScenario(one.scope, n) {
		want = append(want, outcome(w.Run(ctx, one.rdb), one.tenant))
	}
	rdb := redistest.Client(t)
	if _, err := commit.RunBatch(ctx, rdb, []*commit.Write{commit.New().HSet(batched.scope.Key("warm"), "a", "b")}); err != nil {
		t.Fatal(err) // the script loaded: the count below is the steady state
	}
	counter := &redistest.Commands{}
	rdb.AddHook(counter)
	errs, err := commit.RunBatch(ctx, rdb, batchScenario(batched.scope, n))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(errs))
	kinds := map[string]int{}
	for i, err := range errs {
		got[i] = outcome(err, batched.tenant)
		kinds[strings.Fields(got[i])[0]]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes, one by one (-) and batched (+):\n%s", diff)
	}
	for _, kind := range []string{"ok", "unique", "stale", "once", "wrongtype"} {
		if kinds[kind] == 0 {
			t.Errorf("no write had the outcome %s: %v", kind, kinds)
		}
	}
	if diff := cmp.Diff(tenantState(t, one.rdb, one.tenant), tenantState(t, batched.rdb, batched.tenant)); diff != "" {
		t.Errorf("Redis, one by one (-) and batched (+):\n%s", diff)
	}
	for _, index := range []string{"ordered", "random", "emails"} {
		checkBuckets(t, batched, batched.scope.Key("idx", index))
		checkBounds(t, batched, batched.scope.Key("idx", index))
	}
	if calls, want := counter.Count("evalsha")+counter.Count("eval"), (n+commit.BatchWrites-1)/commit.BatchWrites; calls != want {
		t.Errorf("script calls for %d writes: got %d, want %d", n, calls, want)
	}
}

// TestRunBatchAcrossTags: writes of tenants in other partitions go to calls of their own, and each
// outcome comes back to its write.
func TestRunBatchAcrossTags(t *testing.T) {
	ctx := context.Background()
	a, b := newFixture(t), newFixture(t)
	for b.space.Partition(b.tenant) == a.space.Partition(a.tenant) {
		b = newFixture(t)
	}
	var writes []*commit.Write
	var want []string
	for i := range 10 {
		f := a
		if i%2 == 1 {
			f = b
		}
		id := fmt.Sprintf("l%d", i/2%3) // a tenant's 4th and 5th writes repeat its 1st and 2nd
		writes = append(writes, commit.New().ExpectVersion(f.lead(id), "").Put(f.lead(id), []byte(f.tenant), "1"))
		want = append(want, map[bool]string{true: "ok", false: "stale"}[i/2 < 3])
	}
	counter := &redistest.Commands{}
	rdb := redistest.Client(t)
	rdb.AddHook(counter)
	errs, err := commit.RunBatch(ctx, rdb, writes)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(errs))
	for i, err := range errs {
		got[i] = outcome(err, "")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	for _, f := range []fixture{a, b} {
		for _, id := range []string{"l0", "l1", "l2"} {
			if v, err := f.rdb.Get(ctx, f.lead(id)).Result(); err != nil || !strings.HasSuffix(v, f.tenant) {
				t.Errorf("%s of %s: %q, %v", id, f.tenant, v, err)
			}
		}
	}
	if calls := counter.Count("evalsha"); calls != 2 {
		t.Errorf("script calls: got %d, want 2 (one per tag)", calls)
	}
}

// TestRunBatchAfterScriptFlush: a Redis that lost its scripts gets the batch script loaded, and
// the batch runs once.
func TestRunBatchAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rdb := redistest.Client(t)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	write := func() *commit.Write {
		return commit.New().ExpectVersion(f.lead("l1"), "").Put(f.lead("l1"), []byte("x"), "1").Append(f.scope.Stream(), []byte("e"))
	}
	errs, err := commit.RunBatch(ctx, rdb, []*commit.Write{write(), write()})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], commit.ErrVersionMismatch) {
		t.Errorf("outcomes: got %v, want [nil %v]", errs, commit.ErrVersionMismatch)
	}
	if n := xlen(t, f.rdb, f.scope.Stream()); n != 1 {
		t.Errorf("events: got %d, want 1", n)
	}
}

// loadMidPipeline is a hook that has Redis load the batch script after the first command of the
// first pipeline of script calls, as another client's load landing while that pipeline runs would.
type loadMidPipeline struct{ done bool }

func (h *loadMidPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *loadMidPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *loadMidPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.done || len(cmds) < 2 || cmds[0].Name() != "evalsha" {
			return next(ctx, cmds)
		}
		h.done = true
		load := redis.NewStringCmd(ctx, "script", "load", commit.BatchScriptSource)
		return next(ctx, append([]redis.Cmder{cmds[0], load}, cmds[1:]...))
	}
}

// TestRunBatchRunsEachCallOnceWhenTheScriptArrivesMidPipeline: on a Redis without the script, a
// pipeline's first call answers NOSCRIPT and, once another client has loaded it, the calls after
// it run. Only the calls that did not run are sent again: the counter every write increments (an
// effect with no check) counts each write once.
func TestRunBatchRunsEachCallOnceWhenTheScriptArrivesMidPipeline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &loadMidPipeline{}
	rdb.AddHook(hook)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	n := 3*commit.BatchWrites + 5 // four calls in one pipeline
	writes := make([]*commit.Write, n)
	for i := range writes {
		writes[i] = commit.New().HIncrBy(f.scope.Key("stats"), "writes", 1).Append(f.scope.Stream(), []byte("e"))
	}
	errs, err := commit.RunBatch(ctx, rdb, writes)
	if err != nil {
		t.Fatal(err)
	}
	if !hook.done {
		t.Fatal("the script was not loaded in the middle of a pipeline")
	}
	for i, werr := range errs {
		if werr != nil {
			t.Fatalf("write %d: %v", i, werr)
		}
	}
	got, err := f.rdb.HGet(ctx, f.scope.Key("stats"), "writes").Int()
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("counter: got %d, want %d (one per write)", got, n)
	}
	if e := xlen(t, f.rdb, f.scope.Stream()); e != int64(n) {
		t.Errorf("events: got %d, want %d", e, n)
	}
}

// TestRunBatchRefusesAWriteOnce: a write that failed to build, or already ran, keeps its error and
// takes no part; an empty batch sends nothing.
func TestRunBatchRefusesAWriteOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ran := commit.New().HSet(f.scope.Key("h"), "a", "1")
	if err := ran.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	bad := commit.New().HSet(f.scope.Key("h"), "b", "1").HSet("elsewhere", "c", "1")
	good := commit.New().HSet(f.scope.Key("h"), "d", "1")
	errs, err := commit.RunBatch(ctx, f.rdb, []*commit.Write{ran, bad, good, commit.New()})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] == nil || errs[1] == nil || errs[2] != nil || errs[3] != nil {
		t.Errorf("outcomes: got %v, want [error error nil nil]", errs)
	}
	if got := f.rdb.HGetAll(ctx, f.scope.Key("h")).Val(); !cmp.Equal(got, map[string]string{"a": "1", "d": "1"}) {
		t.Errorf("hash: got %v, want a and d", got)
	}
	counter := &redistest.Commands{}
	rdb := redistest.Client(t)
	rdb.AddHook(counter)
	if errs, err := commit.RunBatch(ctx, rdb, nil); err != nil || len(errs) != 0 {
		t.Errorf("empty batch: %v %v", errs, err)
	}
	if got := counter.Take(); len(got) != 0 {
		t.Errorf("an empty batch sent %v", got)
	}
}

// checkBounds checks that each bucket holds only members from its bound up to the next bucket's.
func checkBounds(t *testing.T, f fixture, index string) {
	t.Helper()
	ctx := context.Background()
	bounds, err := f.rdb.ZRange(ctx, index+"#d", 0, -1).Result()
	if err != nil || len(bounds) < 3 {
		t.Fatalf("%s: bounds %q, %v; want a few buckets", index, bounds, err)
	}
	for i, b := range bounds {
		members := f.rdb.ZRange(ctx, index+"#b"+hex.EncodeToString([]byte(b)), 0, -1).Val()
		for _, m := range members {
			if m < b || i+1 < len(bounds) && m >= bounds[i+1] {
				t.Errorf("%s: %q is in the bucket of %q", index, m, b)
			}
		}
	}
}

// TestBucketClaimFindsItsBucket: a claim adds its member to the bucket its range says, even where
// what the call learnt of the directory went stale: a value passed to an owner ordered before the
// old one whose member starts a bucket, and a claim whose bucket split, in the same call, after
// its check looked the value up.
func TestBucketClaimFindsItsBucket(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	emails := f.scope.Key("idx", "emails")
	w := commit.New()
	for i := range 300 {
		w.BucketUnique(emails, fmt.Sprintf("v%d@example.com", i), fmt.Sprintf("l%04d", i))
	}
	if err := w.Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	// A bound that is a value's member: the value passes to an owner before it.
	var value string
	for i := range 300 {
		v := fmt.Sprintf("v%d@example.com", i)
		if f.rdb.ZScore(ctx, emails+"#d", valueKey(v)+fmt.Sprintf("l%04d", i)).Err() == nil {
			value = v
			break
		}
	}
	if value == "" {
		t.Fatal("no bucket starts at a member")
	}
	errs, err := commit.RunBatch(ctx, f.rdb, []*commit.Write{
		commit.New().BucketRelease(emails, value), commit.New().BucketUnique(emails, value, "a0")})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatal(err, errs)
	}
	// Members just below the claimed value's split its bucket after the claim's check. The value
	// is one of the first bucket's, so the last bucket (the index's greatest bound) is not its.
	newValue := ""
	for i := 0; newValue == ""; i++ {
		if k := valueKey(fmt.Sprintf("new%d@example.com", i)); k[0] < 0x20 && k[len(k)-1] != 0 {
			newValue = fmt.Sprintf("new%d@example.com", i)
		}
	}
	below := []byte(valueKey(newValue))
	below[len(below)-1]--
	w = commit.New()
	for i := range 200 {
		w.BucketAdd(emails, string(below)+fmt.Sprintf("%04d", i))
	}
	if err := w.BucketUnique(emails, newValue, "l9999").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, f, emails)
	owners, err := commit.BucketOwners(ctx, f.rdb, emails, value, newValue)
	if err != nil || !cmp.Equal(owners, []string{"a0", "l9999"}) {
		t.Errorf("owners: got %q, %v; want [a0 l9999]", owners, err)
	}
}

// valueKey is what a bucketed unique index keeps of a value (bucket.go's uniqueKey).
func valueKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return string(sum[:16])
}

// commandCalls is how many times Redis ran each command (INFO commandstats, scripts' commands
// included).
func commandCalls(t *testing.T, rdb redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("commandstats: %q", line)
		}
		out[name] = calls
	}
	return out
}

// TestRunBatchMergesEffects: a call's ZADDs, HSETs and HINCRBYs on keys that take nothing else are
// one command per key (per field of a counter), with the effects of exactly the writes that pass
// their checks; a key that a check reads keeps its commands in order; a merged command that fails
// is the error of each write that gave it.
func TestRunBatchMergesEffects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	idx, stats, names, guarded := f.scope.Key("idx", "plain"), f.scope.Key("stats"), f.scope.Key("names"), f.scope.Key("guarded")
	if err := commit.New().Put(f.lead("taken"), []byte("x"), "1").HSet(guarded, "seed", "1").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	var writes []*commit.Write
	for i := range commit.BatchWrites {
		id := fmt.Sprintf("l%02d", i)
		if i == 5 {
			id = "taken" // refused: none of its effects
		}
		writes = append(writes, commit.New().ExpectVersion(f.lead(id), "").Put(f.lead(id), []byte(id), "1").
			ZAdd(idx, float64(i), fmt.Sprintf("m%d", i%20)). // members 0-11 twice: the later score stays
			HIncrBy(stats, "rows", 1).HIncrBy(stats, "odd", int64(i%2)).
			HSet(names, id, "n"+id).
			ExpectExists(guarded).HSet(guarded, id, "g")) // a checked key: not merged
	}
	if _, err := f.rdb.ConfigResetStat(ctx).Result(); err != nil {
		t.Fatal(err)
	}
	errs, err := commit.RunBatch(ctx, f.rdb, writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if want := i == 5; (err != nil) != want {
			t.Errorf("write %d: got %v, want an error: %v", i, err, want)
		}
	}
	calls := commandCalls(t, f.rdb)
	for cmd, want := range map[string]int{"zadd": 1, "hincrby": 2, "hset": 1 + commit.BatchWrites - 1} {
		if calls[cmd] != want {
			t.Errorf("%s: got %d calls, want %d", cmd, calls[cmd], want)
		}
	}
	members, err := f.rdb.ZRangeWithScores(ctx, idx, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range members {
		got[m.Member.(string)] = m.Score
	}
	want := map[string]float64{}
	for i := range commit.BatchWrites {
		if i != 5 {
			want[fmt.Sprintf("m%d", i%20)] = float64(i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sorted set (-want +got):\n%s", diff)
	}
	counters, err := f.rdb.HGetAll(ctx, stats).Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"rows": "31", "odd": "15"}, counters); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	for key, want := range map[string]int64{names: 31, guarded: 32} {
		if n, err := f.rdb.HLen(ctx, key).Result(); err != nil || n != want {
			t.Errorf("HLEN %s: got %d, %v; want %d", key, n, err, want)
		}
	}

	// A merged ZADD onto a key of another type fails for the writes that gave it, alone.
	if err := f.rdb.Set(ctx, f.scope.Key("wrong"), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	errs, err = commit.RunBatch(ctx, f.rdb, []*commit.Write{
		commit.New().ZAdd(f.scope.Key("wrong"), 1, "a").HSet(f.scope.Key("fine"), "a", "1"),
		commit.New().HSet(f.scope.Key("fine"), "b", "1"),
		commit.New().ZAdd(f.scope.Key("wrong"), 2, "b"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		if got := errs[i] != nil && strings.Contains(errs[i].Error(), "WRONGTYPE"); got != want {
			t.Errorf("write %d: got %v, want WRONGTYPE: %v", i, errs[i], want)
		}
	}
	if v, err := f.rdb.HGet(ctx, f.scope.Key("fine"), "b").Result(); err != nil || v != "1" {
		t.Errorf("HGET fine b: got %q, %v; want 1", v, err)
	}
}
