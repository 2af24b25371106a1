package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// The consumer takes an entry's envelope from its "e" field whatever else the entry holds: an
// entry with other fields beside it is handled (or skipped by type) as usual, and an entry without
// one is dead-lettered at once, with the reason.
func TestEntriesWithOtherFieldsOrWithoutTheEnvelope(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		producer, group, tenant := producerName(), "reactor", redistest.Tenant(t)
		handled, skipped := producer+".thing.happened", producer+".thing.ignored"
		stream := b.keys.Scope(producer, tenant).Stream()
		pub := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}
		add := func(values ...any) string {
			t.Helper()
			id, err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		envelope := func(typ string, n int64) (*eventv1.Event, []byte) {
			t.Helper()
			ev, data, err := pub.Envelope(ctx, eventv1.Type[*wrapperspb.Int64Value]{Name: typ}.Of(wrapperspb.Int64(n)), tenant, "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return ev, data
		}
		before, beforeData := envelope(handled, 1)
		after, afterData := envelope(handled, 2)
		_, ignoredData := envelope(skipped, 3)
		add("e", beforeData, "x", "1")
		bare := add("x", "2")
		add("x", "3", "e", ignoredData)
		add("x", "4", "e", afterData)

		startConsumer(t, b, b.rdb, fastConfig("C"), events.Subscription{Group: group, Producer: producer,
			Handle: effect(b.rdb, b.keys, group), Types: []string{handled}}, testTelemetry())
		eventually(t, 10*time.Second, "every entry acknowledged", func() bool {
			return pendingCount(t, b, producer, group) == 0 &&
				len(effects(t, b, group, tenant)) == 2
		})
		got := effects(t, b, group, tenant)
		if len(got) != 2 || got[before.GetId()] != "1" || got[after.GetId()] != "1" {
			t.Fatalf("effects = %v, want one each of %s and %s", got, before.GetId(), after.GetId())
		}
		dead, err := events.DeadLetters(ctx, b.rdb, b.keys, producer, group, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 1 || dead[0].SourceID != bare || !strings.Contains(dead[0].Error, `no "e" field`) {
			t.Fatalf("dead letters = %+v, want the entry %s without an envelope", dead, bare)
		}
	})
}
