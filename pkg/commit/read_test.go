package commit_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
)

var errNotFound = errors.New("not found")

// roundTrips counts what a client sends over the network: a command, or a whole pipeline. On a
// cluster it sits on every node's client, so a pipeline split over nodes counts once per node.
// The client's own bookkeeping is not the caller's: the handshake of a new pooled connection
// (HELLO, CLIENT) and cluster topology reads (CLUSTER SLOTS, refreshed in the background).
type roundTrips struct{ n atomic.Int64 }

func bookkeeping(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "cluster":
		return true
	}
	return false
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !bookkeeping(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !bookkeeping(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// counted returns a client of each kind, standalone and a 3-master cluster, with a tenant scope
// and its round-trip counter.
type counted struct {
	rdb   redis.UniversalClient
	scope keyspace.Scope
	trips *roundTrips
}

func clients(t *testing.T) map[string]counted {
	t.Helper()
	out := map[string]counted{}
	for name, rdb := range map[string]redis.UniversalClient{"standalone": redistest.Client(t), "cluster": redistest.ClusterClient(t)} {
		trips := &roundTrips{}
		if cluster, ok := rdb.(*redis.ClusterClient); ok {
			cluster.OnNewNode(func(node *redis.Client) { node.AddHook(trips) })
		} else {
			rdb.AddHook(trips)
		}
		space, err := keyspace.Open(context.Background(), rdb, 16)
		if err != nil {
			t.Fatal(err)
		}
		tenant := redistest.Tenant(t)
		out[name] = counted{rdb: rdb, scope: space.Scope("svc"+tenant, tenant), trips: trips}
	}
	return out
}

// cost runs f and returns the round trips it took.
func (c counted) cost(t *testing.T, f func() error) int64 {
	t.Helper()
	before := c.trips.n.Load()
	if err := f(); err != nil {
		t.Fatal(err)
	}
	return c.trips.n.Load() - before
}

// thing saves the resource thing:<id> with its index entry, and returns its key.
func (c counted) thing(t *testing.T, id, value string, entry commit.Entry) string {
	t.Helper()
	key := c.scope.Key("thing", id)
	if err := commit.New().Save(key, wrapperspb.String(value), "", "1").Move(nil, []commit.Entry{entry}).Run(context.Background(), c.rdb); err != nil {
		t.Fatal(err)
	}
	return key
}

func save(t *testing.T, rdb redis.UniversalClient, key, value, prev, version string) error {
	t.Helper()
	return commit.New().Save(key, wrapperspb.String(value), prev, version).Run(context.Background(), rdb)
}

func TestGetReadsWhatSaveWrote(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			key := c.scope.Key("thing", "1")
			if err := save(t, c.rdb, key, "first", "", "v1"); err != nil {
				t.Fatalf("create: got %v, want no error", err)
			}
			if err := save(t, c.rdb, key, "second", "v1", "v2"); err != nil {
				t.Fatalf("update: got %v, want no error", err)
			}
			err := save(t, c.rdb, key, "stale", "v1", "v3")
			if !errors.Is(err, commit.ErrVersionMismatch) {
				t.Fatalf("stale update: got %v, want %v", err, commit.ErrVersionMismatch)
			}
			if v, ok := errors.AsType[*commit.VersionError](err); !ok || v.Key != key {
				t.Fatalf("stale update: got %#v, want a VersionError naming %s", err, key)
			}
			got, err := commit.Get(ctx, c.rdb, key, &wrapperspb.StringValue{}, errNotFound)
			if err != nil {
				t.Fatalf("Get: got %v, want no error", err)
			}
			if diff := cmp.Diff(wrapperspb.String("second"), got, protocmp.Transform()); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}

			missing := c.scope.Key("thing", "none")
			if _, err := commit.Get(ctx, c.rdb, missing, &wrapperspb.StringValue{}, errNotFound); !errors.Is(err, errNotFound) {
				t.Errorf("Get of a missing resource: got %v, want %v", err, errNotFound)
			}
			if got, err := commit.Get(ctx, c.rdb, missing, &wrapperspb.StringValue{}, nil); got != nil || err != nil {
				t.Errorf("Get of a missing optional resource: got %v, %v, want nil, nil", got, err)
			}

			// A read queued on a pipeline with other commands: one round trip, data and version.
			pipe := c.rdb.Pipeline()
			stored, gone := commit.Read(ctx, pipe, key), commit.Read(ctx, pipe, missing)
			other := pipe.Exists(ctx, missing)
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			msg := &wrapperspb.StringValue{}
			if found, err := stored.Decode(msg); !found || err != nil || msg.GetValue() != "second" || stored.Version() != "v2" {
				t.Errorf("queued read: got %v, %v, %q at %q, want true, nil, %q at %q", found, err, msg.GetValue(), stored.Version(), "second", "v2")
			}
			if found, err := gone.Decode(msg); found || err != nil || gone.Version() != "" {
				t.Errorf("queued read of a missing resource: got %v, %v, version %q, want false, nil, \"\"", found, err, gone.Version())
			}
			if other.Val() != 0 {
				t.Errorf("EXISTS in the same pipeline: got %d, want 0", other.Val())
			}
		})
	}
}

func TestGetMany(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			newMsg := func() *wrapperspb.StringValue { return &wrapperspb.StringValue{} }
			var keys []string
			var want []*wrapperspb.StringValue
			for i, v := range []string{"a", "", "c", "d", ""} {
				key := c.scope.Key("thing", strconv.Itoa(i))
				keys = append(keys, key)
				if v == "" {
					want = append(want, nil) // never written
					continue
				}
				if err := save(t, c.rdb, key, v, "", "1"); err != nil {
					t.Fatal(err)
				}
				want = append(want, wrapperspb.String(v))
			}
			got, err := commit.GetMany(ctx, c.rdb, keys, newMsg)
			if err != nil {
				t.Fatalf("GetMany: got %v, want no error", err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("GetMany (-want +got):\n%s", diff)
			}
			if got, err := commit.GetMany(ctx, c.rdb, nil, newMsg); len(got) != 0 || err != nil {
				t.Errorf("GetMany of no keys: got %v, %v, want none", got, err)
			}
		})
	}
}

// TestGetManyRefusesKeysOfTwoHashTags: one call is one node's work, also on a cluster.
func TestGetManyRefusesKeysOfTwoHashTags(t *testing.T) {
	rdb := redistest.Client(t)
	trips := &roundTrips{}
	rdb.AddHook(trips)
	keys := []string{"crm:{p1}:svc:t:thing:1", "crm:{p2}:svc:t:thing:1"}
	_, err := commit.GetMany(context.Background(), rdb, keys, func() *wrapperspb.StringValue { return &wrapperspb.StringValue{} })
	if err == nil || !strings.Contains(err.Error(), "outside the hash tag") {
		t.Errorf("GetMany: got %v, want an error about the hash tag", err)
	}
	if n := trips.n.Load(); n != 0 {
		t.Errorf("round trips of a refused read: got %d, want 0", n)
	}
}

// TestRoundTrips counts what each read and write costs, on one Redis and on a cluster: a get,
// a get of many and a page of members are one round trip, a page of resources two, whatever the
// number of resources.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			index := c.scope.Key("things")
			var keys []string
			for i := range 30 {
				id := string(rune('A' + i))
				keys = append(keys, c.thing(t, id, id, commit.Entry{Index: index, Member: id, Score: float64(i % 4)}))
			}
			newMsg := func() *wrapperspb.StringValue { return &wrapperspb.StringValue{} }
			keyOf := func(m string) string { return c.scope.Key("thing", m) }
			// The first run of a script on a node may load it (EVALSHA, then EVAL): warm up both
			// scripts on the node of the keys (on a cluster, another test may have loaded neither).
			if _, err := commit.Members(ctx, c.rdb, commit.Range{Index: index, ByScore: true, Limit: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := commit.Get(ctx, c.rdb, keys[0], newMsg(), errNotFound); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				read func() error
				want int64
			}{
				{"get", func() error {
					_, err := commit.Get(ctx, c.rdb, keys[0], newMsg(), errNotFound)
					return err
				}, 1},
				{"get many", func() error { _, err := commit.GetMany(ctx, c.rdb, keys, newMsg); return err }, 1},
				{"members by member", func() error {
					_, err := commit.Members(ctx, c.rdb, commit.Range{Index: index, Desc: true, After: "M", Limit: 10})
					return err
				}, 1},
				{"members by score", func() error {
					_, err := commit.Members(ctx, c.rdb, commit.Range{Index: index, ByScore: true, After: "1 F", Limit: 10})
					return err
				}, 1},
				{"members by score after a gone member", func() error {
					_, err := commit.Members(ctx, c.rdb, commit.Range{Index: index, ByScore: true, After: "1 Fz", Limit: 10})
					return err
				}, 1},
				{"list", func() error {
					_, err := commit.List(ctx, c.rdb, commit.Range{Index: index, ByScore: true, Desc: true, Limit: 25}, keyOf, newMsg)
					return err
				}, 2},
				{"write", func() error { return save(t, c.rdb, keys[0], "again", "1", "2") }, 1},
			}
			for _, tt := range tests {
				if got := c.cost(t, tt.read); got != tt.want {
					t.Errorf("%s: got %d round trips, want %d", tt.name, got, tt.want)
				}
			}
		})
	}
}
