// Package server wires the support service: Redis store, product client, use cases, gRPC adapter
// and the background sweep of SLA breaches and auto-closes.
package server

import (
	"context"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/support"
	"github.com/crmcycle/crm/services/support/productclient"
	"github.com/crmcycle/crm/services/support/redisstore"
	"github.com/crmcycle/crm/services/support/rpc"
)

// Name is the service's target name.
const Name = "support"

// sweepInterval is how often the background sweep looks for run-out SLA clocks and solved tickets
// to close; SweepTickets does it at once for one tenant.
const sweepInterval = 5 * time.Second

// Service is the mountable support service.
type Service struct {
	rpc    *rpc.Server
	sweep  *support.Sweep
	merges *support.Merges
	erases *support.Erasures
	deps   platform.Deps
	known  *customerref.Checker
}

var (
	_ platform.Service    = (*Service)(nil)
	_ platform.Background = (*Service)(nil)
	_ platform.Reactor    = (*Service)(nil)
)

// New builds the service from the process's shared parts.
func New(deps platform.Deps) (*Service, error) {
	store := redisstore.New(deps.Redis, deps.Keys)
	publisher := events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	products := productclient.New(func() (*grpc.ClientConn, error) { return deps.Dial("product") })
	known := customerref.NewChecker(func() (*grpc.ClientConn, error) { return deps.Dial("marketing") }, customerref.DefaultSize, customerref.DefaultTTL)
	tickets := support.NewTickets(store, known, products, publisher, validator, deps.Now)
	sweep := support.NewSweep(tickets)
	return &Service{
		rpc: rpc.New(rpc.UseCases{
			Tickets: tickets,
			Config:  support.NewConfig(store, publisher, validator, deps.Now),
			Nps:     support.NewNps(store, known, publisher, deps.Now),
			Stats:   support.NewStats(store),
			Sweep:   sweep,
			Audit:   events.Recorder{Publisher: publisher, Redis: deps.Redis, Keys: deps.Keys, Now: deps.Now},
		}, deps.PageTokens),
		sweep: sweep, merges: support.NewMerges(store), erases: support.NewErasures(store), deps: deps, known: known,
	}, nil
}

// Name implements platform.Service.
func (s *Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }

// Subscriptions implements platform.Reactor: support re-points a merged customer's tickets and
// answers, and redacts an erased customer's.
func (s *Service) Subscriptions() []events.Subscription {
	return events.Subscribe(Name,
		events.On(marketingv1.EventCustomerMerged, s.merges.OnCustomerMerged),
		events.On(marketingv1.EventCustomerErased, s.erases.OnCustomerErased))
}

// RunBackground implements platform.Background: the customer check hears of erased and merged
// customers (every process does, not one replica of a consumer group), and every sweepInterval it
// sweeps every partition's schedules. Several processes may sweep at once: each change is a
// versioned commit, so a breach or close happens once whoever gets there first.
func (s *Service) RunBackground(ctx context.Context) error {
	go func() { _ = s.known.Run(ctx, s.deps.Redis) }()
	platform.EveryPartition(ctx, s.deps, "support.sla", sweepInterval, func(ctx context.Context, p int) error {
		r, err := s.sweep.Partition(ctx, p)
		if r.Breaches+r.Closed > 0 {
			s.deps.Logger.InfoContext(ctx, "support sweep", "partition", p, "breaches", r.Breaches, "closed", r.Closed)
		}
		if err != nil {
			return fmt.Errorf("support sweep: %w", err)
		}
		return nil
	})
	return nil
}
