package main

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/telemetry"
)

// bus is the work of the mounted services beside their RPCs: the consumers of the events they react
// to, the trimming of the streams they produce, and their background sweeps.
type bus struct {
	cfg       busConfig
	redisCfg  redisconn.Config
	rdb       redis.UniversalClient
	keys      *keyspace.Space
	tel       *telemetry.Telemetry
	logger    *slog.Logger
	producers []string
	// subscriptions and background are added by the services as they are mounted.
	subscriptions []events.Subscription
	background    []platform.Background
}

// add takes a mounted service's streams, subscriptions and background work.
func (b *bus) add(svc platform.Service) {
	b.producers = append(b.producers, svc.Name())
	if r, ok := svc.(platform.Reactor); ok {
		b.subscriptions = append(b.subscriptions, r.Subscriptions()...)
	}
	if bg, ok := svc.(platform.Background); ok {
		b.background = append(b.background, bg)
	}
}

// run runs the bus until ctx is done; the first failure stops all of it. What the stop cuts short
// (a consumer still creating its groups, say) is not a failure.
func (b *bus) run(ctx context.Context) error {
	if err := b.serve(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (b *bus) serve(ctx context.Context) error {
	busRedis := b.rdb
	if len(b.subscriptions) > 0 {
		// Blocking stream reads hold a connection each: give them their own pool, so they never
		// queue requests behind them. It is sized here, once every service has subscribed.
		cfg := b.redisCfg
		cfg.PoolSize = b.keys.Partitions()*len(b.subscriptions) + 8
		cfg.ClientName = "crm-bus"
		var err error
		if busRedis, err = redisconn.Open(ctx, cfg, b.tel.TracerProvider, b.tel.MeterProvider); err != nil {
			return err
		}
		defer busRedis.Close()
	}
	consumers := make([]*events.Consumer, len(b.subscriptions))
	for i, sub := range b.subscriptions {
		var err error
		if consumers[i], err = events.NewConsumer(b.cfg.Consumer, sub, busRedis, b.keys, b.tel, b.logger); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range consumers {
		g.Go(func() error { return c.Run(ctx) })
	}
	g.Go(func() error {
		events.RunRetention(ctx, b.rdb, b.keys, b.producers, b.cfg.Retention, b.logger)
		return nil
	})
	for _, bg := range b.background {
		g.Go(func() error { return bg.RunBackground(ctx) })
	}
	return g.Wait()
}
