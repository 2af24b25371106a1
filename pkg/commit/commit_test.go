package commit_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fixture is one test's tenant: its own service name too, so its event stream is its own and
// stream lengths can be compared exactly.
type fixture struct {
	rdb    redis.UniversalClient
	scope  keyspace.Scope
	space  *keyspace.Space
	tenant string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	rdb := redistest.Client(t)
	space, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	tenant := redistest.Tenant(t)
	return fixture{rdb: rdb, scope: space.Scope("svc"+tenant, tenant), space: space, tenant: tenant}
}

func (f fixture) lead(id string) string { return f.scope.Key("lead", id) }
func (f fixture) byEmail() string       { return f.scope.Key("idx", "email") }
func (f fixture) byTime() string        { return f.scope.Key("idx", "created") }

// state reads keys in a comparable form: what a failed write must leave untouched.
func state(t *testing.T, rdb redis.UniversalClient, keys ...string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "none":
			v = nil
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			var msgs []redis.XMessage
			msgs, err = rdb.XRange(ctx, k, "-", "+").Result()
			v = msgs
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func xlen(t *testing.T, rdb redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteAppliesEverything(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data := []byte("\x0a\x03abc\x00\xff binary")
	event := []byte("\x08\x01event\x00")

	err := commit.New().
		ExpectVersion(f.lead("l1"), "").
		Put(f.lead("l1"), data, "1").
		HSet(f.byEmail(), "a@example.com", "l1").
		ZAdd(f.byTime(), 1700000000123, "l1").
		Append(f.scope.Stream(), event).
		Run(ctx, f.rdb)
	if err != nil {
		t.Fatalf("Run: got %v, want no error", err)
	}

	got := state(t, f.rdb, f.lead("l1"), f.byEmail(), f.byTime())
	want := map[string]any{
		f.lead("l1"): "\x01" + "1" + string(data), // the version's length, the version, the data
		f.byEmail():  map[string]string{"a@example.com": "l1"},
		f.byTime():   []redis.Z{{Score: 1700000000123, Member: "l1"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after write (-want +got):\n%s", diff)
	}
	msgs, err := f.rdb.XRange(ctx, f.scope.Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("stream entries: got %d, want 1", len(msgs))
	}
	if diff := cmp.Diff(map[string]any{"e": string(event)}, msgs[0].Values); diff != "" {
		t.Errorf("stream entry (-want +got):\n%s", diff)
	}
}

// TestSetFor: a value set with a TTL, only when the write's checks pass.
func TestSetFor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := f.scope.Key("previous-secret")
	if err := commit.New().ExpectVersion(f.lead("l1"), "3").SetFor(secret, "old", time.Hour).Run(ctx, f.rdb); !errors.Is(err, commit.ErrVersionMismatch) {
		t.Fatalf("a write with a failing check: %v, want %v", err, commit.ErrVersionMismatch)
	}
	if n, _ := f.rdb.Exists(ctx, secret).Result(); n != 0 {
		t.Fatal("a write refused by its check set the value")
	}
	if err := commit.New().SetFor(secret, "old", 90*time.Second+time.Microsecond).Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	got, err := f.rdb.Get(ctx, secret).Result()
	ttl := f.rdb.PTTL(ctx, secret).Val()
	if err != nil || got != "old" || ttl <= 89*time.Second || ttl > 90*time.Second+time.Millisecond {
		t.Errorf("after SetFor: %q (%v), TTL %v, want \"old\" for 90.001 s at most", got, err, ttl)
	}
}

func TestWriteUpdateAndRemoveEffects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := commit.New().
		Put(f.lead("l1"), []byte("v1"), "1").
		HSet(f.byEmail(), "old@example.com", "l1").
		ZAdd(f.byTime(), 1, "l1").
		ZAdd(f.byTime(), 2, "l2").
		HSet(f.scope.Key("other"), "f", "x").
		Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}

	err := commit.New().
		ExpectVersion(f.lead("l1"), "1").
		Put(f.lead("l1"), []byte("v2"), "2").
		HDel(f.byEmail(), "old@example.com").
		HSet(f.byEmail(), "new@example.com", "l1").
		ZRem(f.byTime(), "l2").
		ZAdd(f.byTime(), 5, "l1").
		Delete(f.scope.Key("other")).
		HIncrBy(f.scope.Key("stats"), "updates", 3).
		Run(ctx, f.rdb)
	if err != nil {
		t.Fatalf("Run: got %v, want no error", err)
	}
	got := state(t, f.rdb, f.lead("l1"), f.byEmail(), f.byTime(), f.scope.Key("other"), f.scope.Key("stats"))
	want := map[string]any{
		f.lead("l1"):         "\x012v2",
		f.byEmail():          map[string]string{"new@example.com": "l1"},
		f.byTime():           []redis.Z{{Score: 5, Member: "l1"}},
		f.scope.Key("other"): nil,
		f.scope.Key("stats"): map[string]string{"updates": "3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after update (-want +got):\n%s", diff)
	}
}

func TestExpectVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing string // version of the stored resource; "" for none
		expect   string
		wantErr  error
	}{
		{name: "matching version", existing: "3", expect: "3", wantErr: nil},
		{name: "must not exist and does not", existing: "", expect: "", wantErr: nil},
		{name: "stale version", existing: "3", expect: "2", wantErr: commit.ErrVersionMismatch},
		{name: "must not exist but does", existing: "1", expect: "", wantErr: commit.ErrVersionMismatch},
		{name: "expects a version of a missing resource", existing: "", expect: "1", wantErr: commit.ErrVersionMismatch},
		{name: "version prefix is not a match", existing: "12", expect: "1", wantErr: commit.ErrVersionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if tt.existing != "" {
				if err := commit.New().
					Put(f.lead("l1"), []byte("old"), tt.existing).
					HSet(f.byEmail(), "old@example.com", "l1").
					ZAdd(f.byTime(), 1, "l1").
					Append(f.scope.Stream(), []byte("created")).
					Run(ctx, f.rdb); err != nil {
					t.Fatal(err)
				}
			}
			keys := []string{f.lead("l1"), f.byEmail(), f.byTime(), f.scope.Stream(), f.scope.Key("stats")}
			before := state(t, f.rdb, keys...)
			lenBefore := xlen(t, f.rdb, f.scope.Stream())

			err := commit.New().
				ExpectVersion(f.lead("l1"), tt.expect).
				Put(f.lead("l1"), []byte("new"), "next").
				HDel(f.byEmail(), "old@example.com").
				HSet(f.byEmail(), "new@example.com", "l1").
				ZAdd(f.byTime(), 2, "l1").
				HIncrBy(f.scope.Key("stats"), "writes", 1).
				Append(f.scope.Stream(), []byte("updated")).
				Run(ctx, f.rdb)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: got %v, want %v", err, tt.wantErr)
			}

			lenAfter := xlen(t, f.rdb, f.scope.Stream())
			if tt.wantErr != nil {
				if diff := cmp.Diff(before, state(t, f.rdb, keys...)); diff != "" {
					t.Errorf("a refused write changed Redis (-before +after):\n%s", diff)
				}
				if lenAfter != lenBefore {
					t.Errorf("stream length: got %d, want %d", lenAfter, lenBefore)
				}
				return
			}
			if got, want := lenAfter, lenBefore+1; got != want {
				t.Errorf("stream length: got %d, want %d", got, want)
			}
			if v := commit.Read(ctx, f.rdb, f.lead("l1")).Version(); v != "next" {
				t.Errorf("version after write: got %q, want %q", v, "next")
			}
		})
	}
}

func TestUnique(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	claim := func(owner string) error {
		return commit.New().
			Unique(f.byEmail(), "a@example.com", owner).
			Put(f.lead(owner), []byte("data of "+owner), "1").
			ZAdd(f.byTime(), 1, owner).
			Append(f.scope.Stream(), []byte("captured "+owner)).
			Run(ctx, f.rdb)
	}
	if err := claim("l1"); err != nil {
		t.Fatalf("first claim: got %v, want no error", err)
	}

	keys := []string{f.lead("l1"), f.lead("l2"), f.byEmail(), f.byTime(), f.scope.Stream()}
	before := state(t, f.rdb, keys...)
	err := claim("l2")
	var conflict *commit.UniqueConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("claim by another owner: got %v, want *UniqueConflictError", err)
	}
	want := &commit.UniqueConflictError{Index: f.byEmail(), Value: "a@example.com", Owner: "l1"}
	if diff := cmp.Diff(want, conflict); diff != "" {
		t.Errorf("conflict (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, state(t, f.rdb, keys...)); diff != "" {
		t.Errorf("a conflicting write changed Redis (-before +after):\n%s", diff)
	}

	if err := claim("l1"); err != nil {
		t.Fatalf("same owner claims again: got %v, want no error", err)
	}
	if got, want := xlen(t, f.rdb, f.scope.Stream()), int64(2); got != want {
		t.Errorf("stream length after re-claim: got %d, want %d", got, want)
	}
	if got, _ := f.rdb.HGet(ctx, f.byEmail(), "a@example.com").Result(); got != "l1" {
		t.Errorf("owner: got %q, want %q", got, "l1")
	}

	// A released value can be taken by someone else.
	if err := commit.New().HDel(f.byEmail(), "a@example.com").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	if err := claim("l2"); err != nil {
		t.Fatalf("claim of a released value: got %v, want no error", err)
	}
	if got, _ := f.rdb.HGet(ctx, f.byEmail(), "a@example.com").Result(); got != "l2" {
		t.Errorf("owner after release: got %q, want %q", got, "l2")
	}
}

func TestUniqueConflictWithFailingVersionCheck(t *testing.T) {
	// Several checks in one write: the first one that fails decides, and nothing is written.
	f := newFixture(t)
	ctx := context.Background()
	if err := commit.New().HSet(f.byEmail(), "a@example.com", "l1").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	before := state(t, f.rdb, f.lead("l2"), f.byEmail(), f.scope.Stream())
	err := commit.New().
		ExpectVersion(f.lead("l2"), "").
		Unique(f.byEmail(), "a@example.com", "l2").
		Put(f.lead("l2"), []byte("x"), "1").
		Append(f.scope.Stream(), []byte("e")).
		Run(ctx, f.rdb)
	var conflict *commit.UniqueConflictError
	if !errors.As(err, &conflict) || conflict.Owner != "l1" {
		t.Fatalf("Run: got %v, want a conflict with owner l1", err)
	}
	if diff := cmp.Diff(before, state(t, f.rdb, f.lead("l2"), f.byEmail(), f.scope.Stream())); diff != "" {
		t.Errorf("refused write changed Redis (-before +after):\n%s", diff)
	}
}

func TestOnce(t *testing.T) {
	tests := []struct {
		name    string
		ttl     int
		wantTTL bool
	}{
		{name: "without expiry", ttl: 0, wantTTL: false},
		{name: "with expiry", ttl: 3600, wantTTL: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			marker := f.scope.Key("done", "event-1")
			counter := f.scope.Key("points")
			apply := func() error {
				return commit.New().
					Once(marker, tt.ttl).
					HIncrBy(counter, "balance", 1).
					Append(f.scope.Stream(), []byte("credited")).
					Run(ctx, f.rdb)
			}
			if err := apply(); err != nil {
				t.Fatalf("first run: got %v, want no error", err)
			}
			for i := range 3 {
				if err := apply(); !errors.Is(err, commit.ErrAlreadyApplied) {
					t.Fatalf("run #%d: got %v, want %v", i+2, err, commit.ErrAlreadyApplied)
				}
			}
			if got, _ := f.rdb.HGet(ctx, counter, "balance").Result(); got != "1" {
				t.Errorf("counter: got %q, want %q", got, "1")
			}
			if got := xlen(t, f.rdb, f.scope.Stream()); got != 1 {
				t.Errorf("stream length: got %d, want 1", got)
			}
			ttl, err := f.rdb.TTL(ctx, marker).Result()
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantTTL && (ttl <= 0 || ttl.Seconds() > float64(tt.ttl)) {
				t.Errorf("marker TTL: got %v, want in (0, %ds]", ttl, tt.ttl)
			}
			if !tt.wantTTL && ttl >= 0 {
				t.Errorf("marker TTL: got %v, want none", ttl)
			}
		})
	}
}

// countingHook counts the commands a client sends.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestKeysOutsideTheHashTag(t *testing.T) {
	f := newFixture(t)
	// A tenant in another partition of the same service.
	var foreign keyspace.Scope
	for i := 0; ; i++ {
		other := fmt.Sprintf("other-%d", i)
		if f.space.Partition(other) != f.space.Partition(f.tenant) {
			foreign = f.space.Scope("svc"+f.tenant, other)
			break
		}
	}
	tests := []struct {
		name  string
		write *commit.Write
		key   string // the refused key
	}{
		{
			name:  "another partition's resource",
			write: commit.New().Put(f.lead("l1"), []byte("x"), "1").Put(foreign.Key("lead", "l1"), []byte("x"), "1"),
			key:   foreign.Key("lead", "l1"),
		},
		{
			name:  "another partition's stream",
			write: commit.New().Put(f.lead("l1"), []byte("x"), "1").Append(foreign.Stream(), []byte("e")),
			key:   foreign.Stream(),
		},
		{
			name:  "key without a hash tag",
			write: commit.New().ExpectVersion(f.lead("l1"), "").HSet("crm:untagged", "a", "b"),
			key:   "crm:untagged",
		},
		{
			name:  "refused key in the middle of a write",
			write: commit.New().Put(f.lead("l1"), []byte("x"), "1").ZAdd(foreign.Key("idx"), 1, "m").Append(f.scope.Stream(), []byte("e")),
			key:   foreign.Key("idx"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redistest.Client(t)
			hook := &countingHook{}
			rdb.AddHook(hook)
			err := tt.write.Run(context.Background(), rdb)
			if err == nil || !strings.Contains(err.Error(), "outside the hash tag") || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("Run: got %v, want an error about %q outside the hash tag", err, tt.key)
			}
			if got := hook.n.Load(); got != 0 {
				t.Errorf("Redis commands sent: got %d, want 0", got)
			}
			if diff := cmp.Diff(map[string]any{f.lead("l1"): nil, tt.key: nil}, state(t, f.rdb, f.lead("l1"), tt.key)); diff != "" {
				t.Errorf("refused write changed Redis (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmptyWriteSendsNothing(t *testing.T) {
	rdb := redistest.Client(t)
	hook := &countingHook{}
	rdb.AddHook(hook)
	if err := commit.New().Run(context.Background(), rdb); err != nil {
		t.Fatalf("Run: got %v, want no error", err)
	}
	if got := hook.n.Load(); got != 0 {
		t.Errorf("Redis commands sent: got %d, want 0", got)
	}
}

func TestOneRoundTrip(t *testing.T) {
	f := newFixture(t)
	rdb := redistest.Client(t)
	// Load the script first so the count below is the steady state (EVALSHA only).
	if err := commit.New().HSet(f.scope.Key("warm"), "a", "b").Run(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	hook := &countingHook{}
	rdb.AddHook(hook)
	err := commit.New().
		ExpectVersion(f.lead("l1"), "").
		Unique(f.byEmail(), "a@example.com", "l1").
		Put(f.lead("l1"), []byte("x"), "1").
		ZAdd(f.byTime(), 1, "l1").
		Append(f.scope.Stream(), []byte("e")).
		Run(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	if got := hook.n.Load(); got != 1 {
		t.Errorf("Redis commands for one write: got %d, want 1", got)
	}
}

// A Redis that lost its script cache (a restart, SCRIPT FLUSH) gets the script itself with the
// write, which then runs as it would have: the write and its check, nothing twice.
func TestWriteAfterScriptFlush(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rdb := redistest.Client(t)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	counter := &redistest.Commands{}
	rdb.AddHook(counter)
	write := func() error {
		return commit.New().ExpectVersion(f.lead("l1"), "").Put(f.lead("l1"), []byte("x"), "1").
			Append(f.scope.Stream(), []byte("e")).Run(ctx, rdb)
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	if got := counter.Take(); !cmp.Equal(got, []string{"evalsha", "eval"}) {
		t.Errorf("a write after the scripts were flushed sent %v, want [evalsha eval]", got)
	}
	if err := write(); !errors.Is(err, commit.ErrVersionMismatch) {
		t.Errorf("the same create again: got %v, want %v", err, commit.ErrVersionMismatch)
	}
	if got := counter.Take(); !cmp.Equal(got, []string{"evalsha"}) {
		t.Errorf("the next write sent %v, want [evalsha]", got)
	}
	if n := xlen(t, f.rdb, f.scope.Stream()); n != 1 {
		t.Errorf("events: got %d, want 1", n)
	}
}

func TestUniqueRace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const racers = 20
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	clients := make([]redis.UniversalClient, racers)
	for i := range clients {
		clients[i] = redistest.Client(t)
	}
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("l%02d", i)
			<-start
			errs[i] = commit.New().
				ExpectVersion(f.lead(owner), "").
				Unique(f.byEmail(), "same@example.com", owner).
				Put(f.lead(owner), []byte(owner), "1").
				Append(f.scope.Stream(), []byte(owner)).
				Run(ctx, clients[i])
		}()
	}
	close(start)
	wg.Wait()

	winner, err := f.rdb.HGet(ctx, f.byEmail(), "same@example.com").Result()
	if err != nil {
		t.Fatalf("owner of the value: %v", err)
	}
	wins := 0
	for i, err := range errs {
		owner := fmt.Sprintf("l%02d", i)
		var conflict *commit.UniqueConflictError
		switch {
		case err == nil:
			wins++
			if owner != winner {
				t.Errorf("racer %s succeeded but the index names %s", owner, winner)
			}
		case errors.As(err, &conflict):
			if conflict.Owner != winner {
				t.Errorf("racer %s: conflict owner got %q, want %q", owner, conflict.Owner, winner)
			}
			if n, _ := f.rdb.Exists(ctx, f.lead(owner)).Result(); n != 0 {
				t.Errorf("losing racer %s wrote its resource", owner)
			}
		default:
			t.Errorf("racer %s: got %v, want nil or *UniqueConflictError", owner, err)
		}
	}
	if wins != 1 {
		t.Errorf("winners: got %d, want 1", wins)
	}
	if got := xlen(t, f.rdb, f.scope.Stream()); got != 1 {
		t.Errorf("events: got %d, want 1", got)
	}
}

// TestConflictsReachClientsClassified: without a service's own mapping, a unique conflict is
// ALREADY_EXISTS naming the existing owner, and a stale version is ABORTED.
func TestConflictsReachClientsClassified(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := commit.New().Unique(f.scope.Key("emails"), "a@example.com", "owner-1").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	err := commit.New().Unique(f.scope.Key("emails"), "a@example.com", "owner-2").Run(ctx, f.rdb)
	e, ok := apierr.As(err)
	if !ok || e.Kind != apierr.AlreadyExists || e.Metadata["existing_id"] != "owner-1" {
		t.Fatalf("unique conflict as seen by clients: %+v (ok %v), want ALREADY_EXISTS with existing_id owner-1", e, ok)
	}
	if strings.Contains(e.Error(), "emails") {
		t.Fatalf("client-facing message %q leaks the index key", e.Error())
	}
	err = commit.New().ExpectVersion(f.scope.Key("r", "1"), "9").Run(ctx, f.rdb)
	if e, ok := apierr.As(err); !ok || e.Kind != apierr.Aborted || !errors.Is(err, commit.ErrVersionMismatch) {
		t.Fatalf("stale version as seen by clients: %v, want ABORTED", err)
	}
}

func TestExpectExistsWritesNothingWhenMissing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref := f.scope.Key("campaign", "c1")
	write := func() error {
		return commit.New().ExpectExists(ref).Put(f.lead("l1"), []byte("x"), "1").HIncrBy(f.scope.Key("stats", "c1"), "leads", 1).Run(ctx, f.rdb)
	}
	var missing *commit.MissingError
	if err := write(); !errors.As(err, &missing) || missing.Key != ref {
		t.Fatalf("write referencing a missing key: %v, want MissingError for %s", err, ref)
	}
	if n, _ := f.rdb.Exists(ctx, f.lead("l1"), f.scope.Key("stats", "c1")).Result(); n != 0 {
		t.Fatalf("a refused write left %d keys", n)
	}
	if err := f.rdb.Set(ctx, ref, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("write referencing an existing key: %v", err)
	}
}

// TestPublishAnnouncesOnlyWritesMade: a write's announcement reaches a listener when the write is
// made, and a refused write announces nothing.
func TestPublishAnnouncesOnlyWritesMade(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	channel := "test:" + f.scope.Key("changed")
	sub := f.rdb.Subscribe(ctx, channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription is confirmed
		t.Fatal(err)
	}
	lead := f.lead("l1")
	write := func(version, message string) error {
		return commit.New().Put(lead, []byte("x"), version).ExpectVersion(lead, "").Publish(channel, message).Run(ctx, f.rdb)
	}
	if err := write("1", "first"); err != nil {
		t.Fatal(err)
	}
	if err := write("2", "refused"); !errors.Is(err, commit.ErrVersionMismatch) {
		t.Fatalf("second write: %v, want a version mismatch", err)
	}
	if err := commit.New().Publish(channel, "alone").Run(ctx, f.rdb); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg.Payload)
	}
	if fmt.Sprint(got) != "[first alone]" {
		t.Errorf("announcements = %v, want [first alone] (nothing of the refused write)", got)
	}
}

func TestExpectAbsentWritesNothingWhenPresent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	members := f.scope.Key("account-contacts", "a1")
	write := func() error {
		return commit.New().ExpectAbsent(members).Delete(f.scope.Key("account", "a1")).HIncrBy(f.scope.Key("stats"), "deleted", 1).Run(ctx, f.rdb)
	}
	if err := f.rdb.ZAdd(ctx, members, redis.Z{Member: "c1"}).Err(); err != nil {
		t.Fatal(err)
	}
	var present *commit.PresentError
	if err := write(); !errors.As(err, &present) || present.Key != members {
		t.Fatalf("write expecting an empty set: %v, want PresentError for %s", err, members)
	}
	if n, _ := f.rdb.Exists(ctx, f.scope.Key("stats")).Result(); n != 0 {
		t.Fatal("a refused write counted")
	}
	if err := f.rdb.ZRem(ctx, members, "c1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("write once the set is empty: %v", err)
	}
}

func TestExpectUnsetWritesNothingWhenSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	record := f.scope.Key("customer", "c1")
	write := func() error {
		return commit.New().ExpectUnset(record, "m").HIncrBy(f.scope.Key("points", "c1"), "b", 5).Run(ctx, f.rdb)
	}
	if err := write(); err != nil {
		t.Fatalf("write while the field is unset: %v", err)
	}
	if err := f.rdb.HSet(ctx, record, "m", "c2").Err(); err != nil {
		t.Fatal(err)
	}
	var set *commit.FieldSetError
	if err := write(); !errors.As(err, &set) || set.Key != record || set.Field != "m" || set.Value != "c2" {
		t.Fatalf("write once the field is set: %v, want FieldSetError naming c2", err)
	}
	if got, _ := f.rdb.HGet(ctx, f.scope.Key("points", "c1"), "b").Result(); got != "5" {
		t.Fatalf("a refused write counted: %s, want 5", got)
	}
}

// TestConcurrentDebitsNeverOverdraw: 50 debits of 10 race for a balance of 100; exactly 10 pass.
func TestConcurrentDebitsNeverOverdraw(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	account := f.scope.Key("account", "a1")
	if err := f.rdb.HSet(ctx, account, "b", 100).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for range 50 {
		wg.Go(func() {
			err := commit.New().Debit(account, "b", 10).ZAdd(f.scope.Key("ledger"), 0, uuid()).Run(ctx, f.rdb)
			var insufficient *commit.InsufficientError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &insufficient):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	balance, _ := f.rdb.HGet(ctx, account, "b").Int64()
	entries, _ := f.rdb.ZCard(ctx, f.scope.Key("ledger")).Result()
	if ok.Load() != 10 || refused.Load() != 40 || balance != 0 || entries != 10 {
		t.Fatalf("debits: %d passed, %d refused, balance %d, %d ledger entries; want 10, 40, 0, 10",
			ok.Load(), refused.Load(), balance, entries)
	}
}

var debitSeq atomic.Int64

func uuid() string { return fmt.Sprint("entry-", debitSeq.Add(1)) }

// Writes built one after another do not share their programs: each applies exactly its own
// operations (the program buffers are recycled), and a write that ran refuses to run again.
func TestWritesKeepTheirOwnPrograms(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			key := c.scope.Key("counters")
			for i := range 50 {
				field := fmt.Sprintf("f%d", i%7)
				w := commit.New().HIncrBy(key, field, int64(i)).HSet(key, "last", strings.Repeat("x", i*97))
				if err := w.Run(ctx, c.rdb); err != nil {
					t.Fatal(err)
				}
				if err := w.Run(ctx, c.rdb); err == nil {
					t.Fatal("a write ran twice")
				}
			}
			got, err := c.rdb.HGetAll(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f := range 7 {
				want := 0
				for i := f; i < 50; i += 7 {
					want += i
				}
				if got[fmt.Sprintf("f%d", f)] != strconv.Itoa(want) {
					t.Errorf("f%d = %s, want %d", f, got[fmt.Sprintf("f%d", f)], want)
				}
			}
			if len(got["last"]) != 49*97 {
				t.Errorf("last holds %d bytes, want %d", len(got["last"]), 49*97)
			}
		})
	}
}
