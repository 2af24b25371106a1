package integration_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// captureEvents are the three events a CaptureLead of a new lead commits, as marketing makes them.
func captureEvents(tb testing.TB, tenant string) []*eventv1.Event {
	tb.Helper()
	lead, customer, request := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	ctx := events.WithCause(context.Background(), events.ByKey(uuid.NewString(), request, "/crm.marketing.v1.MarketingService/CaptureLead"))
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	now := time.Now()
	var out []*eventv1.Event
	for _, body := range []eventv1.Body{
		marketingv1.EventLeadCaptured.Of(&marketingv1.LeadCaptured{LeadId: lead, Created: true, CustomerId: customer,
			SourceChannel: typev1.Channel_CHANNEL_WEB}),
		marketingv1.EventCustomerCreated.Of(&marketingv1.CustomerChanged{CustomerId: customer}),
		marketingv1.EventLifecycleStageChanged.Of(&marketingv1.LifecycleStageChanged{CustomerId: customer,
			Move: &marketingv1.StageMove{To: marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT, Time: timestamppb.New(now), Cause: "marketing.lead.captured"}}),
	} {
		ev, _, err := pub.Envelope(ctx, body, tenant, customer, now)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// BenchmarkRecordCapture records the three events of a capture (a new lead), as the integration
// consumer does, on a redis-server of its own: "sequential" one event after another, "lanes" 64
// captures' events side by side as the consumer's lanes record a batch (each capture's events in
// order). redis-µs/op is the CPU redis-server spent per capture, redis-cmds/op the commands it ran
// (script calls and the commands inside them: load-independent), redis-B/op the memory its data
// grew by; allocations are crm's.
//
//	cd services/integration && go test -run '^$' -bench RecordCapture -benchmem .
func BenchmarkRecordCapture(b *testing.B) {
	for _, lanes := range []int{1, 64} {
		name := "sequential"
		if lanes > 1 {
			name = "lanes"
		}
		b.Run(name, func(b *testing.B) {
			rdb := redistest.NewServer(b).Client(b)
			r := recorderOn(b, rdb, time.Now)
			ctx := context.Background()
			const tenant = "t-bench"
			record := func(evs []*eventv1.Event) {
				for _, ev := range evs {
					if err := r.recorder.Record(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			}
			record(captureEvents(b, tenant)) // the settings and endpoints read, the scripts loaded
			captures := make([][]*eventv1.Event, b.N)
			for i := range captures {
				captures[i] = captureEvents(b, tenant)
			}
			b.ReportAllocs()
			if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			mem := usedMemory(b, rdb)
			cpu := redistest.CPU(b, rdb)
			b.ResetTimer()
			for i := 0; i < b.N; i += lanes {
				var wg sync.WaitGroup
				for _, evs := range captures[i:min(i+lanes, b.N)] {
					wg.Go(func() { record(evs) })
				}
				wg.Wait()
			}
			b.StopTimer()
			redistest.ReportCPU(b, rdb, cpu)
			cmds := 0
			for name, n := range commandStats(b, rdb) {
				if name != "info" && name != "config|resetstat" {
					cmds += n
				}
			}
			b.ReportMetric(float64(cmds)/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(usedMemory(b, rdb)-mem)/float64(b.N), "redis-B/op")
		})
	}
}

// usedMemory is INFO memory's used_memory of the redis-server behind rdb.
func usedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("INFO memory without used_memory")
	return 0
}
