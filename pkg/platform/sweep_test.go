package platform_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// partitions is the partition count of the test key space.
const partitions = 3

// lines is a log destination that hands each line to the test.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// sweepDeps are Deps over the test key space, logging to logs.
func sweepDeps(t *testing.T, logs lines) platform.Deps {
	t.Helper()
	keys, err := keyspace.Open(context.Background(), redistest.Client(t), partitions)
	if err != nil {
		t.Fatal(err)
	}
	return platform.Deps{Keys: keys, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

// start runs EveryPartition until stop is called or the test ends; each sweep reports its
// partition on calls and returns what fail says for it.
func start(t *testing.T, deps platform.Deps, interval time.Duration, fail func(ctx context.Context, partition int) error) (calls <-chan int, stop func()) {
	t.Helper()
	ch := make(chan int, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		platform.EveryPartition(ctx, deps, "test", interval, func(ctx context.Context, p int) error {
			select {
			case ch <- p:
			case <-ctx.Done():
			}
			return fail(ctx, p)
		})
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("EveryPartition did not return after its context was canceled")
		}
	}
	t.Cleanup(stop)
	return ch, stop
}

// receive returns the next n values of ch, failing the test if they do not come in time.
func receive[T any](t *testing.T, ch <-chan T, n int) []T {
	t.Helper()
	var got []T
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case v := <-ch:
			got = append(got, v)
		case <-deadline:
			t.Fatalf("got %d values in time, want %d: %v", len(got), n, got)
		}
	}
	return got
}

func noFailure(context.Context, int) error { return nil }

func TestEveryPartitionSweepsAtOnce(t *testing.T) {
	// An interval far longer than the test: the first round cannot be waiting for a tick.
	calls, _ := start(t, sweepDeps(t, make(lines, 10)), time.Hour, noFailure)
	if diff := cmp.Diff([]int{0, 1, 2}, receive(t, calls, partitions)); diff != "" {
		t.Errorf("first round (-want +got):\n%s", diff)
	}
}

func TestEveryPartitionRepeatsEveryInterval(t *testing.T) {
	calls, _ := start(t, sweepDeps(t, make(lines, 10)), time.Millisecond, noFailure)
	if diff := cmp.Diff([]int{0, 1, 2, 0, 1, 2, 0, 1, 2}, receive(t, calls, 3*partitions)); diff != "" {
		t.Errorf("three rounds (-want +got):\n%s", diff)
	}
}

func TestEveryPartitionLogsAFailureAndGoesOn(t *testing.T) {
	logs := make(lines, 100)
	calls, _ := start(t, sweepDeps(t, logs), time.Millisecond, func(_ context.Context, p int) error {
		if p == 1 {
			return errors.New("partition one is down")
		}
		return nil
	})
	if diff := cmp.Diff([]int{0, 1, 2, 0, 1, 2}, receive(t, calls, 2*partitions)); diff != "" {
		t.Errorf("a failing partition stopped the sweep (-want +got):\n%s", diff)
	}
	line := receive(t, logs, 1)[0]
	for _, want := range []string{"level=WARN", "partition=1", "partition one is down"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q does not contain %q", line, want)
		}
	}
}

func TestEveryPartitionStopsWithinARound(t *testing.T) {
	// The sweep of partition 0 lasts until the context is canceled.
	calls, stop := start(t, sweepDeps(t, make(lines, 10)), time.Hour, func(ctx context.Context, p int) error {
		if p == 0 {
			<-ctx.Done()
		}
		return nil
	})
	if got := receive(t, calls, 1); got[0] != 0 {
		t.Fatalf("first call on partition %d, want 0", got[0])
	}
	stop()
	if len(calls) != 0 {
		t.Errorf("%d more partitions swept after the context was canceled", len(calls))
	}
}

func TestEveryPartitionNamesTheSweepAsTheCause(t *testing.T) {
	causes := make(chan events.Cause, 100)
	calls, _ := start(t, sweepDeps(t, make(lines, 10)), time.Millisecond, func(ctx context.Context, _ int) error {
		select {
		case causes <- events.CauseFrom(ctx):
		default: // later rounds than the test reads
		}
		return nil
	})
	receive(t, calls, 2*partitions)
	got := receive(t, causes, 2*partitions)
	for i, c := range got {
		if c.Actor.GetSweep() != "test" || c.RequestID == "" {
			t.Fatalf("call %d: cause %v, want sweep \"test\" with a request id", i, c)
		}
		if i > 0 && i%partitions != 0 && c.RequestID != got[i-1].RequestID {
			t.Errorf("call %d: request id %q differs from the round's %q", i, c.RequestID, got[i-1].RequestID)
		}
	}
	if got[0].RequestID == got[partitions].RequestID {
		t.Errorf("two rounds share request id %q", got[0].RequestID)
	}
}
