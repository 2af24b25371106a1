package commit_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
)

// TestWriteOnCluster runs whole writes for tenants of every partition on a 3-master Redis Cluster:
// keys built with keyspace share one slot, so no write is refused with CROSSSLOT, and a refused
// check still writes nothing.
func TestWriteOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb, space := clusterSpace(t)
	service := "svc" + redistest.Tenant(t)
	byPartition := map[int]string{}
	for i := 0; len(byPartition) < partitions; i++ {
		tenant := fmt.Sprintf("%s-%d", redistest.Tenant(t), i)
		if _, ok := byPartition[space.Partition(tenant)]; !ok {
			byPartition[space.Partition(tenant)] = tenant
		}
	}
	for p, tenant := range byPartition {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			s := space.Scope(service, tenant)
			write := func(owner string) error {
				return commit.New().
					ExpectVersion(s.Key("lead", owner), "").
					UniqueOrRead(s.Key("idx", "email"), "a@example.com", owner, s.Key("lead", "")).
					Once(s.Key("done", owner), 60).
					Put(s.Key("lead", owner), []byte("data"), "1").
					ZAdd(s.Key("idx", "created"), 1, owner).
					HIncrBy(s.Key("stats"), "leads", 1).
					Append(s.Stream(), []byte("event")).
					Run(ctx, rdb)
			}
			if err := write("l1"); err != nil {
				t.Fatalf("write: got %v, want no error", err)
			}
			var conflict *commit.UniqueConflictError
			if err := write("l2"); !errors.As(err, &conflict) || conflict.Owner != "l1" {
				t.Fatalf("conflicting write: got %v, want a conflict with l1", err)
			}
			if want := "\x011data"; conflict.OwnerRecord != want { // version "1", data
				t.Errorf("the conflict's owner record: got %q, want %q", conflict.OwnerRecord, want)
			}
			if err := write("l1"); !errors.Is(err, commit.ErrVersionMismatch) {
				t.Fatalf("repeated create: got %v, want %v", err, commit.ErrVersionMismatch)
			}
			if n, err := rdb.Exists(ctx, s.Key("lead", "l2"), s.Key("done", "l2")).Result(); err != nil || n != 0 {
				t.Errorf("keys of the refused write: got %d (%v), want 0", n, err)
			}
			if got := rdb.HGet(ctx, s.Key("stats"), "leads").Val(); got != "1" {
				t.Errorf("counter: got %q, want %q", got, "1")
			}
		})
	}
	// The stream belongs to the partition, and each partition got one tenant above: one event each.
	for p := range partitions {
		if n := rdb.XLen(ctx, space.Stream(service, p)).Val(); n != 1 {
			t.Errorf("events in partition %d: got %d, want 1", p, n)
		}
	}
}

// TestLostMarkerRefusesWrites: a Redis whose partition marker is gone (it lost its data while a
// process served it) takes no write into that partition, on standalone Redis and on a Cluster,
// until it is re-initialized; the marker is checked inside the write, in its one round trip.
func TestLostMarkerRefusesWrites(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range map[string]redis.UniversalClient{
		"standalone": redistest.Client(t),
		"cluster":    redistest.ClusterClient(t),
	} {
		t.Run(name, func(t *testing.T) {
			space, err := keyspace.Open(ctx, rdb, partitions)
			if err != nil {
				t.Fatal(err)
			}
			tenant := redistest.Tenant(t)
			s := space.Scope("svc"+tenant, tenant)
			marker := keyspace.MarkerKey("p" + strconv.Itoa(space.Partition(tenant)))
			write := func(id string) error {
				return commit.New().ExpectVersion(s.Key("lead", id), "").Put(s.Key("lead", id), []byte("data"), "1").
					Append(s.Stream(), []byte("event")).Run(ctx, rdb)
			}
			if err := write("before"); err != nil {
				t.Fatalf("write with the marker: %v", err)
			}
			if err := rdb.Del(ctx, marker).Err(); err != nil {
				t.Fatal(err)
			}
			// Whatever happens below, the shared Redis gets its marker back.
			t.Cleanup(func() { _, _ = keyspace.Open(ctx, rdb, partitions) })
			counter := &redistest.Commands{}
			rdb.AddHook(counter)
			err = write("lost")
			if !errors.Is(err, commit.ErrNotInitialized) {
				t.Fatalf("write without the marker: got %v, want %v", err, commit.ErrNotInitialized)
			}
			if e, ok := apierr.As(err); !ok || e.Kind != apierr.Unavailable {
				t.Fatalf("write without the marker: %v is not UNAVAILABLE", err)
			}
			if n := len(counter.Take()); n != 1 {
				t.Fatalf("the refused write took %d commands, want its one script call", n)
			}
			if n, err := rdb.Exists(ctx, s.Key("lead", "lost")).Result(); err != nil || n != 0 {
				t.Fatalf("the refused write left its record: %d %v", n, err)
			}
			if _, err := keyspace.Open(ctx, rdb, partitions); err != nil {
				t.Fatalf("re-initialize: %v", err)
			}
			if err := write("after"); err != nil {
				t.Fatalf("write after re-initializing: %v", err)
			}
		})
	}
}

// TestBucketedIndexOnCluster: a bucketed index's buckets (keys the script derives, not names it is
// given) share the index's slot, so adds that split buckets, claims, pages, counts and owner
// lookups all run on a Redis Cluster.
func TestBucketedIndexOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb, space := clusterSpace(t)
	for i := range 3 {
		tenant := fmt.Sprintf("%s-%d", redistest.Tenant(t), i)
		s := space.Scope("svc"+tenant, tenant)
		index, emails := s.Key("idx", "created"), s.Key("idx", "email")
		w := commit.New()
		for j := range 300 {
			w.BucketAdd(index, fmt.Sprintf("m%04d", j))
		}
		if err := w.BucketUnique(emails, "a@example.com", "l1").Run(ctx, rdb); err != nil {
			t.Fatalf("%s: bucketed write on a cluster: %v", tenant, err)
		}
		p, err := commit.Members(ctx, rdb, commit.Range{Index: index, Bucketed: true, Desc: true, After: "m0150", Limit: 200})
		if err != nil || len(p.Items) != 150 || p.Items[0] != "m0149" || p.Items[149] != "m0000" {
			t.Fatalf("%s: page across buckets: %d items, %v", tenant, len(p.Items), err)
		}
		if n, err := commit.BucketCount(ctx, rdb, index).Int64(); err != nil || n != 300 {
			t.Fatalf("%s: count %d, %v", tenant, n, err)
		}
		if owners, err := commit.BucketOwners(ctx, rdb, emails, "a@example.com"); err != nil || owners[0] != "l1" {
			t.Fatalf("%s: owners %q, %v", tenant, owners, err)
		}
	}
}

// TestRunBatchOnCluster: a batch of writes of tenants in several partitions runs on a Redis
// Cluster (each call's keys on one slot, so no CROSSSLOT), each outcome back to its write, and a
// call refused for a lost marker refuses only its partition's writes.
func TestRunBatchOnCluster(t *testing.T) {
	ctx := context.Background()
	rdb, space := clusterSpace(t)
	var scopes []keyspace.Scope
	var lostPartition int
	seen := map[int]bool{}
	for i := 0; len(scopes) < 4; i++ {
		tenant := fmt.Sprintf("%s-%d", redistest.Tenant(t), i)
		if p := space.Partition(tenant); !seen[p] {
			seen[p], lostPartition = true, p
			scopes = append(scopes, space.Scope("svc"+tenant, tenant))
		}
	}
	lost := scopes[3]
	if err := rdb.Del(ctx, keyspace.MarkerKey("p"+strconv.Itoa(lostPartition))).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = keyspace.Open(ctx, rdb, partitions) })
	var writes []*commit.Write
	for i := range 200 {
		s := scopes[i%len(scopes)]
		id := fmt.Sprintf("l%d", i/len(scopes)%40) // from the 41st of a tenant's writes on, repeats
		writes = append(writes, commit.New().ExpectVersion(s.Key("lead", id), "").Put(s.Key("lead", id), []byte("d"), "1").
			BucketAdd(s.Key("idx", "created"), id).Append(s.Stream(), []byte("e")))
	}
	errs, err := commit.RunBatch(ctx, rdb, writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		var want error
		switch {
		case scopes[i%len(scopes)] == lost:
			want = commit.ErrNotInitialized
		case i/len(scopes) >= 40:
			want = commit.ErrVersionMismatch
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("write %d: got %v, want %v", i, err, want)
		}
	}
	for _, s := range scopes[:3] {
		if n, err := commit.BucketCount(ctx, rdb, s.Key("idx", "created")).Int64(); err != nil || n != 40 {
			t.Errorf("%s: %d members, %v; want 40", s.Key("idx", "created"), n, err)
		}
	}
	if n := rdb.Exists(ctx, lost.Key("lead", "l0")).Val(); n != 0 {
		t.Errorf("the lost partition got a record")
	}
}

// partitions is how many partitions the cluster tests' keyspace has.
const partitions = 16

// clusterSpace is a client of the test cluster and a keyspace of partitions on it.
func clusterSpace(t *testing.T) (redis.UniversalClient, *keyspace.Space) {
	t.Helper()
	rdb := redistest.ClusterClient(t)
	space, err := keyspace.Open(context.Background(), rdb, partitions)
	if err != nil {
		t.Fatal(err)
	}
	return rdb, space
}
