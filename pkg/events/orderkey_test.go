package events_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// TestOrderKeyHandlesKeysSideBySide: a subscription with an OrderKey gets one batch of events of
// six customers with an unkeyed event in the middle. Each customer's events are handled in stream
// order; the first event of every customer before the unkeyed one waits (with a deadline) until
// two events were in flight at once, which a one-at-a-time consumer never gets to; the unkeyed event is handled alone, after every event before it and before
// any after it; every event is handled once and acknowledged.
func TestOrderKeyHandlesKeysSideBySide(t *testing.T) {
	b := standaloneBackend(t)
	ctx := context.Background()
	producer, tenant := producerName(), redistest.Tenant(t)
	const customers, perCustomer, barrierAt = 6, 10, 30
	for n := range customers * perCustomer {
		if n == barrierAt {
			publishAs(ctx, t, b, producer, tenant, producer+".all.moved", "", -1)
		}
		publishAs(ctx, t, b, producer, tenant, producer+".thing.happened", fmt.Sprintf("c%d", n%customers), n)
	}

	var (
		mu                    sync.Mutex
		inFlight, maxInFlight int
		handled               []int64                // in the order handled
		byCustomer            = map[string][]int64{} // each customer's, in the order handled
		started               = map[string]bool{}
		problems              []string
	)
	value := func(ev *eventv1.Event) int64 {
		v := &wrapperspb.Int64Value{}
		if err := proto.Unmarshal(ev.GetPayload().GetValue(), v); err != nil {
			t.Error(err)
		}
		return v.GetValue()
	}
	handle := func(ctx context.Context, ev *eventv1.Event) error {
		n := value(ev)
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		if n < 0 { // the unkeyed event
			if inFlight != 1 || len(handled) != barrierAt {
				problems = append(problems, fmt.Sprintf("the unkeyed event ran with %d in flight after %d handled, want alone after %d", inFlight, len(handled), barrierAt))
			}
		} else if n < barrierAt && !started[ev.GetCustomerId()] {
			started[ev.GetCustomerId()] = true
			deadline := time.Now().Add(10 * time.Second)
			for maxInFlight < 2 && time.Now().Before(deadline) {
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
			}
			if maxInFlight < 2 {
				problems = append(problems, fmt.Sprintf("event %d of %s was alone in flight for 10s", n, ev.GetCustomerId()))
			}
		}
		inFlight--
		handled = append(handled, n)
		if n >= 0 {
			byCustomer[ev.GetCustomerId()] = append(byCustomer[ev.GetCustomerId()], n)
		}
		mu.Unlock()
		return nil
	}
	cfg := fastConfig("orderkey")
	cfg.Batch = 100 // the whole stream in one batch
	orderKey := func(ev *eventv1.Event) string {
		if ev.GetCustomerId() == "" {
			return ""
		}
		return ev.GetTenantId() + "/" + ev.GetCustomerId()
	}
	startConsumer(t, b, b.rdb, cfg, events.Subscription{Group: "g", Producer: producer, Handle: handle, OrderKey: orderKey}, testTelemetry())
	total := customers*perCustomer + 1
	eventually(t, 30*time.Second, "every event handled and acknowledged", func() bool {
		mu.Lock()
		n := len(handled)
		mu.Unlock()
		return n >= total && pendingCount(t, b, producer, "g") == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if len(handled) != total {
		t.Errorf("%d events handled, want %d (each once)", len(handled), total)
	}
	if maxInFlight < 2 {
		t.Errorf("at most %d event in flight, want events of different customers side by side", maxInFlight)
	}
	for i, n := range handled {
		if (i < barrierAt) != (n >= 0 && n < barrierAt) && n >= 0 {
			t.Errorf("event %d handled in position %d: the unkeyed event at %d should split them", n, i, barrierAt)
		}
	}
	for c, ns := range byCustomer {
		for i := 1; i < len(ns); i++ {
			if ns[i] <= ns[i-1] {
				t.Errorf("customer %s's events handled in the order %v, want stream order", c, ns)
				break
			}
		}
		if len(ns) != perCustomer {
			t.Errorf("customer %s: %d events handled, want %d", c, len(ns), perCustomer)
		}
	}
}

// TestSubscriptionBatchOverridesTheConsumers: a subscription's own Batch takes that many entries
// per read and runs as many lanes at once, whatever the consumer's Batch and Workers (here 4):
// 48 events of 48 customers are all in flight together (each handler waits, with a deadline,
// until every one has started), which a consumer reading 4 at a time never gets to.
func TestSubscriptionBatchOverridesTheConsumers(t *testing.T) {
	b := standaloneBackend(t)
	ctx := context.Background()
	producer, tenant := producerName(), redistest.Tenant(t)
	const n = 48
	for i := range n {
		publishAs(ctx, t, b, producer, tenant, producer+".thing.happened", fmt.Sprintf("c%d", i), i)
	}
	var (
		mu      sync.Mutex
		started int
		handled int
	)
	all := make(chan struct{})
	handle := func(ctx context.Context, ev *eventv1.Event) error {
		mu.Lock()
		started++
		if started == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("event of %s: not every event started within 10s", ev.GetCustomerId())
		}
		mu.Lock()
		handled++
		mu.Unlock()
		return nil
	}
	cfg := fastConfig("batch")
	cfg.Batch, cfg.Workers = 4, 4
	orderKey := func(ev *eventv1.Event) string { return ev.GetCustomerId() }
	startConsumer(t, b, b.rdb, cfg, events.Subscription{Group: "g", Producer: producer, Handle: handle, OrderKey: orderKey, Batch: 64}, testTelemetry())
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("only %d of %d events were in flight together", started, n)
	}
	eventually(t, 30*time.Second, "every event handled and acknowledged", func() bool {
		mu.Lock()
		h := handled
		mu.Unlock()
		return h == n && pendingCount(t, b, producer, "g") == 0
	})
}
