package keyspace_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// partitions is the count every test of this package opens DB 0 with, so that the tests agree on
// the crm:meta:partitions key of the package's private server.
const partitions = 16

// dbClient is a client of one logical database of the test server: the partition count is a
// per-database record, so each Open scenario gets a database nobody else writes.
func dbClient(t *testing.T, db int) redis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.DB = db
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openSpace(t *testing.T) *keyspace.Space {
	t.Helper()
	s, err := keyspace.Open(context.Background(), redistest.Client(t), partitions)
	if err != nil {
		t.Fatalf("Open(%d): %v", partitions, err)
	}
	return s
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name     string
		db       int
		opens    []int // partition counts of successive Opens on the same database
		wantErrs []error
		wantRec  string // crm:meta:partitions afterwards; "" for absent
	}{
		{name: "first open records the count", db: 1, opens: []int{16}, wantErrs: []error{nil}, wantRec: "16"},
		{name: "re-open with the same count", db: 2, opens: []int{8, 8, 8}, wantErrs: []error{nil, nil, nil}, wantRec: "8"},
		{name: "different count is refused", db: 3, opens: []int{16, 32}, wantErrs: []error{nil, keyspace.ErrPartitionMismatch}, wantRec: "16"},
		{name: "refusal keeps the first count", db: 4, opens: []int{4, 5, 4}, wantErrs: []error{nil, keyspace.ErrPartitionMismatch, nil}, wantRec: "4"},
		{name: "one partition", db: 5, opens: []int{1}, wantErrs: []error{nil}, wantRec: "1"},
		{name: "largest count", db: 6, opens: []int{16384}, wantErrs: []error{nil}, wantRec: "16384"},
		{name: "zero partitions", db: 7, opens: []int{0}, wantErrs: []error{errAny}, wantRec: ""},
		{name: "negative partitions", db: 8, opens: []int{-1}, wantErrs: []error{errAny}, wantRec: ""},
		{name: "more partitions than slots", db: 9, opens: []int{16385}, wantErrs: []error{errAny}, wantRec: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := dbClient(t, tt.db)
			if err := rdb.Del(ctx, keyspace.PartitionsKey).Err(); err != nil {
				t.Fatal(err)
			}
			for i, n := range tt.opens {
				s, err := keyspace.Open(ctx, rdb, n)
				want := tt.wantErrs[i]
				switch {
				case want == nil && err != nil:
					t.Fatalf("Open #%d (%d): got %v, want no error", i, n, err)
				case want == nil && s.Partitions() != n:
					t.Errorf("Open #%d: Partitions() got %d, want %d", i, s.Partitions(), n)
				case want == errAny && err == nil:
					t.Errorf("Open #%d (%d): got no error, want one", i, n)
				case want != nil && want != errAny && !errors.Is(err, want):
					t.Errorf("Open #%d (%d): got %v, want %v", i, n, err, want)
				}
				if err != nil && s != nil {
					t.Errorf("Open #%d (%d): got a Space with error %v", i, n, err)
				}
			}
			got, err := rdb.Get(ctx, keyspace.PartitionsKey).Result()
			if errors.Is(err, redis.Nil) {
				got, err = "", nil
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantRec {
				t.Errorf("recorded partitions: got %q, want %q", got, tt.wantRec)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestOpenSharedDatabase(t *testing.T) {
	// Every test of this package opens DB 0 with the same count; a second count is refused there.
	openSpace(t)
	openSpace(t)
	if _, err := keyspace.Open(context.Background(), redistest.Client(t), partitions*2); !errors.Is(err, keyspace.ErrPartitionMismatch) {
		t.Errorf("Open(%d) after Open(%d): got %v, want %v", partitions*2, partitions, err, keyspace.ErrPartitionMismatch)
	}
}

func TestPartition(t *testing.T) {
	s := openSpace(t)
	other, err := keyspace.Open(context.Background(), dbClient(t, 10), partitions)
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]int{}
	for i := range 2000 {
		tenant := "tenant-" + strconv.Itoa(i)
		p := s.Partition(tenant)
		if p < 0 || p >= partitions {
			t.Fatalf("Partition(%q): got %d, want in [0, %d)", tenant, p, partitions)
		}
		if again := s.Partition(tenant); again != p {
			t.Fatalf("Partition(%q) twice: got %d then %d, want the same", tenant, p, again)
		}
		if o := other.Partition(tenant); o != p {
			t.Fatalf("Partition(%q) of another Space with the same count: got %d, want %d", tenant, o, p)
		}
		used[p]++
	}
	// 2000 tenants over 16 partitions: a hash that leaves one empty is broken.
	if len(used) != partitions {
		t.Errorf("partitions used by 2000 tenants: got %d, want %d (%v)", len(used), partitions, used)
	}
}

func TestPartitionSingle(t *testing.T) {
	s, err := keyspace.Open(context.Background(), dbClient(t, 11), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"", "a", "acme", "t0123456789ab"} {
		if got := s.Partition(tenant); got != 0 {
			t.Errorf("Partition(%q) with 1 partition: got %d, want 0", tenant, got)
		}
	}
}

var keyPattern = regexp.MustCompile(`^crm:\{p([0-9]+)\}:([a-z]+):([^:]+):(.+)$`)

func TestScopeKeys(t *testing.T) {
	s := openSpace(t)
	tests := []struct {
		service, tenant string
		parts           []string
		wantSuffix      string
	}{
		{"marketing", "acme", []string{"lead", "0190a1b2-0000-7000-8000-000000000001"}, "marketing:acme:lead:0190a1b2-0000-7000-8000-000000000001"},
		{"sales", "acme", []string{"account", "a1"}, "sales:acme:account:a1"},
		{"marketing", "t42", []string{"idx", "lead", "email"}, "marketing:t42:idx:lead:email"},
		{"product", "beta-co", []string{"sku"}, "product:beta-co:sku"},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.tenant, func(t *testing.T) {
			scope := s.Scope(tt.service, tt.tenant)
			p := s.Partition(tt.tenant)
			tag := fmt.Sprintf("crm:{p%d}:", p)

			if got, want := scope.Key(tt.parts...), tag+tt.wantSuffix; got != want {
				t.Errorf("Key(%q): got %q, want %q", tt.parts, got, want)
			}
			if got, want := scope.Stream(), fmt.Sprintf("crm:{p%d}:%s:events", p, tt.service); got != want {
				t.Errorf("Stream(): got %q, want %q", got, want)
			}
			if got, want := s.Stream(tt.service, p), scope.Stream(); got != want {
				t.Errorf("Space.Stream(%q, %d): got %q, want the scope's %q", tt.service, p, got, want)
			}
			m := keyPattern.FindStringSubmatch(scope.Key(tt.parts...))
			if m == nil {
				t.Fatalf("Key(%q) = %q does not match crm:{p<N>}:<service>:<tenant>:<kind>:<id>", tt.parts, scope.Key(tt.parts...))
			}
			if m[1] != strconv.Itoa(p) || m[2] != tt.service || m[3] != tt.tenant {
				t.Errorf("Key parts: got partition %s service %s tenant %s, want %d %s %s", m[1], m[2], m[3], p, tt.service, tt.tenant)
			}
		})
	}
}

func TestScopeSharesHashTag(t *testing.T) {
	s := openSpace(t)
	tagOf := regexp.MustCompile(`\{([^}]*)\}`)
	for i := range 200 {
		tenant := "tenant-" + strconv.Itoa(i)
		scope := s.Scope("marketing", tenant)
		keys := []string{scope.Key("lead", "1"), scope.Key("idx", "email"), scope.Key("idx", "status", "NEW"), scope.Stream()}
		want := tagOf.FindStringSubmatch(keys[0])
		if want == nil {
			t.Fatalf("key %q has no hash tag", keys[0])
		}
		for _, k := range keys[1:] {
			if got := tagOf.FindStringSubmatch(k); got == nil || got[1] != want[1] {
				t.Fatalf("hash tag of %q: got %v, want %q (same as %q)", k, got, want[1], keys[0])
			}
		}
	}
}

func TestScopesOfDifferentTenantsDoNotCollide(t *testing.T) {
	s := openSpace(t)
	a := s.Scope("marketing", "acme").Key("lead", "1")
	b := s.Scope("marketing", "acme2").Key("lead", "1")
	c := s.Scope("sales", "acme").Key("lead", "1")
	if a == b || a == c || b == c {
		t.Errorf("keys of different tenants or services collide: %q %q %q", a, b, c)
	}
}

// TestCheck follows a store through a data loss and an init with the wrong count: Check, what
// readiness probes ask, says which and what to run, and Reinit repairs the wrong count.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	rdb := dbClient(t, 12)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := keyspace.Open(ctx, rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx, rdb); err != nil {
		t.Fatalf("Check of an initialized store: %v", err)
	}
	wantErr := func(step string, want error, texts ...string) {
		t.Helper()
		err := s.Check(ctx, rdb)
		if !errors.Is(err, want) {
			t.Fatalf("%s: Check got %v, want %v", step, err, want)
		}
		for _, text := range texts {
			if !strings.Contains(err.Error(), text) {
				t.Errorf("%s: Check's error %q does not say %q", step, err, text)
			}
		}
	}

	// One partition's data lost (one cluster master, say): the others are no help.
	if err := rdb.Del(ctx, keyspace.MarkerKey("p3")).Err(); err != nil {
		t.Fatal(err)
	}
	wantErr("a partition's marker lost", keyspace.ErrNotInitialized, "p3", "crm admin redis init --partitions 16")
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	wantErr("all of it lost", keyspace.ErrNotInitialized, keyspace.PartitionsKey, "crm admin redis init --partitions 16")

	// The operator initializes it with 8 (a plain init on the empty store succeeds: nothing says
	// what the processes run with), which leaves this process's partitions 8-15 unmarked.
	if _, err := keyspace.Open(ctx, rdb, 8); err != nil {
		t.Fatal(err)
	}
	wantErr("initialized with 8", keyspace.ErrPartitionMismatch, "initialized for 8 partitions", "runs with 16",
		"crm admin redis init --partitions 16 --force")
	var m *keyspace.MismatchError
	if err := s.Check(ctx, rdb); !errors.As(err, &m) || m.Recorded != 8 || m.Configured != 16 {
		t.Errorf("Check after an init with 8: got %#v, want Recorded 8, Configured 16", m)
	}
	// A plain init with 16 is refused now; the forced one repairs it.
	if _, err := keyspace.Open(ctx, rdb, 16); !errors.Is(err, keyspace.ErrPartitionMismatch) {
		t.Fatalf("Open(16) on a store initialized with 8: got %v, want %v", err, keyspace.ErrPartitionMismatch)
	}
	if old, err := keyspace.Reinit(ctx, rdb, 16); err != nil || old != 8 {
		t.Fatalf("Reinit(16): got %d, %v, want 8, nil", old, err)
	}
	if err := s.Check(ctx, rdb); err != nil {
		t.Fatalf("Check after Reinit(16): %v", err)
	}

	// Forced down to 4: the markers of partitions 4-15 go, so no writer of 16 writes there.
	if old, err := keyspace.Reinit(ctx, rdb, 4); err != nil || old != 16 {
		t.Fatalf("Reinit(4): got %d, %v, want 16, nil", old, err)
	}
	for p, want := range map[string]int64{"p3": 1, "p4": 0, "p15": 0} {
		if n, err := rdb.Exists(ctx, keyspace.MarkerKey(p)).Result(); err != nil || n != want {
			t.Errorf("marker of %s after Reinit(4): exists %d (%v), want %d", p, n, err, want)
		}
	}
	if s4, err := keyspace.Open(ctx, rdb, 4); err != nil || s4.Check(ctx, rdb) != nil {
		t.Errorf("Open(4) after Reinit(4): %v", err)
	}
}

func TestCheckRedisDown(t *testing.T) {
	s := openSpace(t)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	err := s.Check(context.Background(), down)
	if err == nil || errors.Is(err, keyspace.ErrNotInitialized) || errors.Is(err, keyspace.ErrPartitionMismatch) {
		t.Errorf("Check with Redis down: got %v, want the connection's error", err)
	}
}
