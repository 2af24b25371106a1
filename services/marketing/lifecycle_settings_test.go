package marketing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/marketing"
)

const day = 24 * time.Hour

// churnClock is a reaction fixture whose reactions (and so the sweep) read a clock the test sets.
type churnClock struct {
	*reactionFixture
	mu  sync.Mutex
	now time.Time
}

func newChurnClock(t *testing.T, start time.Time) *churnClock {
	c := &churnClock{reactionFixture: newReactionFixture(t), now: start}
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	c.reactions = marketing.NewReactions(c.store, c.lifecycle, c.loyalty, pub, func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now
	})
	return c
}

// sweepAt runs the churn sweep of the tenant's partition at the given time.
func (c *churnClock) sweepAt(t *testing.T, at time.Time) {
	t.Helper()
	c.mu.Lock()
	c.now = at
	c.mu.Unlock()
	if _, err := c.reactions.SweepChurn(context.Background(), c.keys.Partition(c.tenant)); err != nil {
		t.Fatal(err)
	}
}

// order places an order of customer at placed and hands its event to the reactions.
func (c *churnClock) order(t *testing.T, customer string, placed time.Time) {
	t.Helper()
	c.handle(t, c.publish(t, salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{
		Id: uuid.NewString(), CustomerId: customer, Total: eur(10, 0), CreateTime: timestamppb.New(placed)}}), customer))
}

// setWindow changes the tenant's churn window and returns the event the change committed, which
// the caller hands to the reactions as the bus would.
func (c *churnClock) setWindow(t *testing.T, days int32) *eventv1.Event {
	t.Helper()
	st, err := c.lifecycle.UpdateSettings(context.Background(), c.tenant, &marketing.LifecycleSettings{ChurnWindowDays: days},
		&fieldmaskpb.FieldMask{Paths: []string{"churn_window_days"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range c.events(t, marketingv1.EventLifecycleSettingsUpdated.Name) {
		var got marketingv1.LifecycleSettings
		if err := ev.GetPayload().UnmarshalTo(&got); err != nil {
			t.Fatal(err)
		}
		if got.GetEtag() == st.GetEtag() {
			return ev
		}
	}
	t.Fatalf("no %s event at etag %s", marketingv1.EventLifecycleSettingsUpdated.Name, st.GetEtag())
	return nil
}

// due is when the schedule has the customer churn; zero when it has no entry.
func (c *churnClock) due(t *testing.T, customer string) time.Time {
	t.Helper()
	key := c.keys.Partitioned("marketing", c.keys.Partition(c.tenant), "churn-due")
	score, err := c.rdb.ZScore(context.Background(), key, c.tenant+" "+customer).Result()
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(score))
}

func TestAShrunkChurnWindowChurnsAtTheNewTime(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	c := newChurnClock(t, start)
	buyer := c.capture(t, "shrink@example.com", "", "").GetCustomerId()
	c.order(t, buyer, start)
	if got, want := c.due(t, buyer), start.Add(marketing.DefaultChurnWindow); !got.Equal(want) {
		t.Fatalf("scheduled at %v, want the default window's end %v", got, want)
	}

	c.deliverTwice(t, c.setWindow(t, 30))
	if got, want := c.due(t, buyer), start.Add(30*day); !got.Equal(want) {
		t.Fatalf("after the window shrank to 30 days: due %v, want %v", got, want)
	}
	c.sweepAt(t, start.Add(29*day))
	if got := c.stage(t, buyer).GetStage(); got != first {
		t.Fatalf("29 days in: %v, want FIRST_TIME_CUSTOMER", got)
	}
	c.sweepAt(t, start.Add(30*day+time.Minute))
	if got := c.stage(t, buyer).GetStage(); got != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
		t.Fatalf("past the 30-day window: %v, want CHURNED", got)
	}
	if !c.due(t, buyer).IsZero() {
		t.Fatalf("a churned customer is still scheduled at %v", c.due(t, buyer))
	}
}

func TestAGrownChurnWindowNeverChurnsEarly(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	c := newChurnClock(t, start)
	c.handle(t, c.setWindow(t, 30))
	buyer := c.capture(t, "grow@example.com", "", "").GetCustomerId()
	c.order(t, buyer, start)
	if got, want := c.due(t, buyer), start.Add(30*day); !got.Equal(want) {
		t.Fatalf("scheduled at %v, want the 30-day window's end %v", got, want)
	}
	grown := c.setWindow(t, 60)
	// The sweep runs before the re-timing reaction got to the event: it restages with the new
	// window, which does not churn, and schedules the new end.
	c.sweepAt(t, start.Add(31*day))
	if got := c.stage(t, buyer).GetStage(); got != first {
		t.Fatalf("31 days in with a 60-day window: %v, want FIRST_TIME_CUSTOMER", got)
	}
	if got, want := c.due(t, buyer), start.Add(60*day); !got.Equal(want) {
		t.Fatalf("after the sweep: due %v, want %v", got, want)
	}
	c.deliverTwice(t, grown)
	if got, want := c.due(t, buyer), start.Add(60*day); !got.Equal(want) {
		t.Fatalf("after the re-timing: due %v, want %v", got, want)
	}
	c.sweepAt(t, start.Add(59*day))
	if got := c.stage(t, buyer).GetStage(); got != first {
		t.Fatalf("59 days in: %v, want FIRST_TIME_CUSTOMER", got)
	}
	c.sweepAt(t, start.Add(60*day+time.Minute))
	if got := c.stage(t, buyer).GetStage(); got != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED {
		t.Fatalf("past the 60-day window: %v, want CHURNED", got)
	}
}

// Orders keep arriving while the window changes and the schedule is re-timed: once every event is
// handled, every customer is due exactly at their last order plus the final window, whatever the
// interleaving (a schedule written with a window that changed meanwhile is refused and written
// again; a re-timing is conditional on the window it read).
func TestChurnScheduleFollowsTheWindowUnderConcurrentOrders(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	c := newChurnClock(t, start)
	const customers = 40
	ids := make([]string, customers)
	for i := range ids {
		ids[i] = c.capture(t, fmt.Sprintf("race%d@example.com", i), "", "").GetCustomerId()
	}
	var wg sync.WaitGroup
	errs := make(chan error, customers+8)
	for i, id := range ids {
		wg.Go(func() {
			placed := start.Add(time.Duration(i) * time.Hour)
			ev, _, err := events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}.Envelope(context.Background(),
				salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: uuid.NewString(), CustomerId: id,
					Total: eur(10, 0), CreateTime: timestamppb.New(placed)}}), c.tenant, id, start)
			if err == nil {
				err = deliver(c.reactions, ev)
			}
			errs <- err
		})
	}
	var windows []int32
	for _, days := range []int32{20, 400, 7, 90} {
		ev := c.setWindow(t, days)
		windows = append(windows, days)
		wg.Go(func() { errs <- deliver(c.reactions, ev) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, marketing.ErrAlreadyApplied) {
			t.Fatal(err)
		}
	}
	window := time.Duration(windows[len(windows)-1]) * day
	for i, id := range ids {
		if got, want := c.due(t, id), start.Add(time.Duration(i)*time.Hour+window); !got.Equal(want) {
			t.Fatalf("customer %d: due %v, want %v (last order + the final %v window)", i, got, want, window)
		}
	}
}
