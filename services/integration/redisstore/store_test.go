package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// holdPipelines holds every pipeline the client sends until release is closed, after saying on
// sending that one reached the hook.
type holdPipelines struct {
	sending chan struct{}
	release chan struct{}
}

func (h *holdPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *holdPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *holdPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.sending <- struct{}{}
		<-h.release
		return next(ctx, cmds)
	}
}

// TestAnIngestWaitingInTheQueueGivesUpWithItsContext: while one caller's pipeline of ingests is
// held on its way to Redis, a second caller whose context ends returns at once with the
// context's error, and its event is never recorded; a third caller, queued with it, is sent once
// the first pipeline is through (the queue does not wait for the caller that left). Before,
// the second waited for the held pipeline whatever its context said.
func TestAnIngestWaitingInTheQueueGivesUpWithItsContext(t *testing.T) {
	rdb := redistest.NewServer(t).Client(t)
	ctx := context.Background()
	keys, err := keyspace.Open(ctx, rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	hold := &holdPipelines{sending: make(chan struct{}, 8), release: make(chan struct{})}
	rdb.AddHook(hold)
	const tenant = "t-ctx"
	ingest := func(ctx context.Context, id string) chan error {
		out := make(chan error, 1)
		go func() {
			_, _, _, err := store.Ingest(ctx, redisstore.Ingestion{Tenant: tenant, EventID: id, EndpointsVersion: "0"})
			out <- err
		}()
		return out
	}
	recorded := func(id string) bool {
		n, err := rdb.Exists(ctx, store.Scope(tenant).Key("seen", id, "integration")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	first := ingest(ctx, "ev-1")
	<-hold.sending // the first caller is the sender, held
	short, cancel := context.WithCancel(ctx)
	second := ingest(short, "ev-2")
	third := ingest(ctx, "ev-3")
	// The second and third wait behind the held pipeline: the first is the sender until it is through.
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the caller that gave up got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a queued caller whose context ended is still waiting behind the held pipeline")
	}
	close(hold.release)
	for name, ch := range map[string]chan error{"first": first, "third": third} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s caller: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s caller never got its answer: the queue is stuck", name)
		}
	}
	if !recorded("ev-1") || recorded("ev-2") || !recorded("ev-3") {
		t.Errorf("recorded: ev-1 %v, ev-2 %v (gave up), ev-3 %v", recorded("ev-1"), recorded("ev-2"), recorded("ev-3"))
	}
}
