package events

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/crmcycle/crm/pkg/keyspace"
)

type metrics struct {
	attrs                           metric.MeasurementOption
	delivered, failed, deadLettered metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, sub Subscription, rdb redis.UniversalClient, keys *keyspace.Space) (*metrics, error) {
	meter := mp.Meter("github.com/crmcycle/crm/pkg/events")
	set := attribute.NewSet(attribute.String("group", sub.Group), attribute.String("producer", sub.Producer))
	m := &metrics{attrs: metric.WithAttributeSet(set)}
	var err error
	if m.delivered, err = meter.Int64Counter("crm.events.delivered", metric.WithDescription("events handled and acknowledged")); err != nil {
		return nil, err
	}
	if m.failed, err = meter.Int64Counter("crm.events.failed", metric.WithDescription("failed handler calls")); err != nil {
		return nil, err
	}
	if m.deadLettered, err = meter.Int64Counter("crm.events.dead_lettered", metric.WithDescription("events sent to the dead-letter stream")); err != nil {
		return nil, err
	}
	lag, err := meter.Int64ObservableGauge("crm.events.lag", metric.WithDescription("entries not yet delivered to the group"))
	if err != nil {
		return nil, err
	}
	pending, err := meter.Int64ObservableGauge("crm.events.pending", metric.WithDescription("entries delivered, not yet acknowledged"))
	if err != nil {
		return nil, err
	}
	dead, err := meter.Int64ObservableGauge("crm.events.dead_letters", metric.WithDescription("events waiting in the dead-letter stream"))
	if err != nil {
		return nil, err
	}
	// Observed at scrape time, summed over partitions.
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		all, err := Lag(ctx, rdb, keys, sub.Producer)
		if err != nil {
			return err
		}
		var l, p, d int64
		for _, g := range all {
			if g.Group == sub.Group {
				l, p, d = l+max(g.Lag, 0), p+g.Pending, d+g.DeadLetters
			}
		}
		o.ObserveInt64(lag, l, m.attrs)
		o.ObserveInt64(pending, p, m.attrs)
		o.ObserveInt64(dead, d, m.attrs)
		return nil
	}, lag, pending, dead)
	return m, err
}
