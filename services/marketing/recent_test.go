package marketing

import (
	"context"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/redistest"
)

// TestRecentLeadsExpire: a touched lead is kept recentTTL, no longer.
func TestRecentLeadsExpire(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := recentLeads{now: func() time.Time { return now }}
	lead := &Lead{Id: "l1", CustomerId: "c1"}
	r.put("t1", "ada@example.com", lead)
	now = now.Add(recentTTL - time.Second)
	if got := r.get("t1", "ada@example.com"); got != lead {
		t.Fatalf("just before its TTL: %v, want the lead", got)
	}
	if got := r.get("t2", "ada@example.com"); got != nil {
		t.Fatalf("another tenant's: %v, want none", got)
	}
	now = now.Add(time.Second)
	if got := r.get("t1", "ada@example.com"); got != nil {
		t.Fatalf("at its TTL: %v, want none", got)
	}
}

// TestRecentLeadsFollowTheEndedCustomers: an erase or merge announced on customerref.Ended (by
// any process) drops that customer's leads from this process' recent leads, and only theirs.
func TestRecentLeadsFollowTheEndedCustomers(t *testing.T) {
	rdb := redistest.Client(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	l := &Leads{}
	go func() {
		defer close(done)
		l.FollowEnded(ctx, rdb)
	}()
	t.Cleanup(func() { stop(); <-done })
	gone := func(what, tenant, email string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); l.recent.get(tenant, email) != nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is still among the recent leads", what)
			}
		}
	}
	// The subscription's start drops everything (what it missed is unknown): a sentinel ended by
	// an announcement is gone once the subscription is up, whichever of the two dropped it.
	l.recent.put("t0", "sentinel@example.com", &Lead{CustomerId: "c0"})
	for deadline := time.Now().Add(10 * time.Second); l.recent.get("t0", "sentinel@example.com") != nil; time.Sleep(10 * time.Millisecond) {
		if err := rdb.Publish(ctx, customerref.Ended, customerref.EndedMessage("t0", "c0")).Err(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never started")
		}
	}

	erased, kept, elsewhere := &Lead{CustomerId: "c1"}, &Lead{CustomerId: "c2"}, &Lead{CustomerId: "c1"}
	l.recent.put("t1", "erased@example.com", erased)
	l.recent.put("t1", "kept@example.com", kept)
	l.recent.put("t2", "same-id@example.com", elsewhere) // another tenant's customer with the same id
	if err := rdb.Publish(ctx, customerref.Ended, customerref.EndedMessage("t1", "c1")).Err(); err != nil {
		t.Fatal(err)
	}
	gone("the ended customer's lead", "t1", "erased@example.com")
	if l.recent.get("t1", "kept@example.com") != kept || l.recent.get("t2", "same-id@example.com") != elsewhere {
		t.Fatal("another customer's lead was dropped too")
	}
}
