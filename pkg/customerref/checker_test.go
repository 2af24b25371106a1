package customerref

import (
	"context"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// following starts a checker (one process's) that follows Ended until the test ends, and waits
// until its subscription is up.
func following(t *testing.T) *Checker {
	t.Helper()
	c := NewChecker(nil, DefaultSize, DefaultTTL)
	rdb := redistest.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, rdb) }()
	t.Cleanup(func() { cancel(); <-done })
	// Up once it forgets a probe announced: it has handled its subscription's start (which
	// forgets everything) before anything the test remembers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.known.Add(cacheKey("probe", "probe"), struct{}{})
		if err := rdb.Publish(context.Background(), Ended, EndedMessage("probe", "probe")).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if !c.remembers("probe", "probe") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the checker never heard an announcement")
		}
	}
	return c
}

func (c *Checker) remembers(tenant, customer string) bool {
	_, ok := c.known.Peek(cacheKey(tenant, customer))
	return ok
}

// TestEveryProcessForgetsAnEndedCustomer: two processes' checkers remember two customers; one
// write (as marketing's erase or merge makes it) announces the end of one of them, and both
// checkers forget it within a second while remembering the other.
func TestEveryProcessForgetsAnEndedCustomer(t *testing.T) {
	tenant := redistest.Tenant(t)
	checkers := []*Checker{following(t), following(t)}
	for _, c := range checkers {
		c.known.Add(cacheKey(tenant, "ended"), struct{}{})
		c.known.Add(cacheKey(tenant, "kept"), struct{}{})
	}
	rdb := redistest.Client(t)
	key := "test:" + tenant + ":customer:ended"
	if err := commit.New().Delete(key).Publish(Ended, EndedMessage(tenant, "ended")).Run(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for i, c := range checkers {
		for c.remembers(tenant, "ended") {
			if time.Now().After(deadline) {
				t.Fatalf("checker %d still remembers the ended customer a second after the announcement", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !c.remembers(tenant, "kept") {
			t.Errorf("checker %d forgot a customer that was not announced", i)
		}
	}
}
