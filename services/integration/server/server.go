// Package server wires the integration service: the recorder of every stream's events (audit
// log, timelines, webhook deliveries), the webhook dispatcher, and the gRPC adapter.
package server

import (
	"context"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/redisstore"
	"github.com/crmcycle/crm/services/integration/rpc"
)

// Name is the service's target name.
const Name = "integration"

// Config of the integration service.
type Config struct {
	// Webhooks tunes delivery; AllowPrivate is --webhook-allow-private.
	Webhooks integration.DispatchConfig
}

// Service is the mountable integration service.
type Service struct {
	rpc        *rpc.Server
	recorder   *integration.Recorder
	dispatcher *integration.Dispatcher
	known      *customerref.Checker
	deps       platform.Deps
}

var (
	_ platform.Service    = (*Service)(nil)
	_ platform.Reactor    = (*Service)(nil)
	_ platform.Background = (*Service)(nil)
)

// New builds the service from the process's shared parts.
func New(cfg Config, deps platform.Deps) (*Service, error) {
	store := redisstore.New(deps.Redis, deps.Keys)
	publisher := events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	endpoints := integration.NewEndpoints(store, publisher, validator, cfg.Webhooks.AllowPrivate, deps.Now)
	dispatcher := integration.NewDispatcher(cfg.Webhooks, store, endpoints, deps.Logger, deps.Now, deps.Telemetry.MeterProvider)
	endpoints.Attach(dispatcher)
	settings := integration.NewSettings(store, publisher, deps.Now)
	known := customerref.NewChecker(func() (*grpc.ClientConn, error) { return deps.Dial("marketing") }, customerref.DefaultSize, customerref.DefaultTTL)
	return &Service{
		rpc: rpc.New(rpc.UseCases{
			History:   integration.NewHistory(store, known),
			Endpoints: endpoints,
			ApiKeys:   integration.NewApiKeys(auth.NewStore(deps.Redis), store, publisher, deps.Now),
			Settings:  settings,
		}, deps.PageTokens),
		recorder:   integration.NewRecorder(store, settings, dispatcher, deps.Now),
		dispatcher: dispatcher,
		known:      known,
		deps:       deps,
	}, nil
}

// Name implements platform.Service.
func (s *Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }

// Subscriptions implements platform.Reactor: one group over every service's stream.
func (s *Service) Subscriptions() []events.Subscription { return s.recorder.Subscriptions() }

// RetentionSweep is how often the history is trimmed to each tenant's retention.
const RetentionSweep = 10 * time.Minute

// RunBackground implements platform.Background: the webhook dispatcher, and the retention sweep
// over every partition.
func (s *Service) RunBackground(ctx context.Context) error {
	var g errgroup.Group
	g.Go(func() error { return s.dispatcher.Run(ctx) })
	g.Go(func() error { return s.known.Run(ctx, s.deps.Redis) })
	g.Go(func() error {
		platform.EveryPartition(ctx, s.deps, "integration.retention", RetentionSweep, func(ctx context.Context, p int) error {
			if _, err := s.recorder.TrimHistory(ctx, p); err != nil {
				return fmt.Errorf("integration retention sweep: %w", err)
			}
			return nil
		})
		return nil
	})
	return g.Wait()
}
