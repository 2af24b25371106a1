package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// TestHistoryEntriesOfBothLayoutsReadAndGuard: an entry is stored as pkg/commit stores a record
// (a string); one an older version stored as a hash {d, v} still shows in the audit log, and is
// still its event's redelivery guard.
func TestHistoryEntriesOfBothLayoutsReadAndGuard(t *testing.T) {
	rdb := redistest.NewServer(t).Client(t)
	r := recorderOn(t, rdb, time.Now)
	ctx := context.Background()
	tenant := redistest.Tenant(t)
	ep, err := r.endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/hook", EventTypes: []string{"sales.*"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := r.store.Scope(tenant)
	fresh := event(t, tenant, "sales.deal.won", "c-1", "key-1", "req-1")
	if err := r.recorder.Record(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if typ, _ := rdb.Type(ctx, redisstore.EntryKey(sc, fresh.GetId())).Result(); typ != "string" {
		t.Errorf("a new entry is a %s, want a string", typ)
	}
	// An entry as an older version recorded it: a hash {d, v} under the same indexes, no marker.
	old := event(t, tenant, "sales.deal.won", "c-2", "key-1", "req-2")
	data, err := proto.Marshal(&integrationv1.AuditEntry{Id: old.GetId(), EventType: old.GetType(), CustomerId: "c-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, redisstore.EntryKey(sc, old.GetId()), "d", data, "v", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, redisstore.AuditKey(sc), redis.Z{Member: old.GetId()}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.ids(t, tenant, nil, ""); len(got) != 2 || got[0] != old.GetId() || got[1] != fresh.GetId() {
		t.Fatalf("the audit log: %v, want [%s %s]", got, old.GetId(), fresh.GetId())
	}
	for _, ev := range []*eventv1.Event{fresh, old} { // both redelivered
		if err := r.recorder.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if typ, _ := rdb.Type(ctx, redisstore.EntryKey(sc, old.GetId())).Result(); typ != "hash" {
		t.Errorf("the old entry is a %s after its redelivery, want it untouched", typ)
	}
	if got := r.deliveriesOf(t, tenant, ep.GetId()); len(got) != 1 {
		t.Errorf("%d deliveries after both events' redelivery, want the fresh event's first one only", len(got))
	}
}
