// Package server wires the marketing service: Redis store, use cases and gRPC adapter.
package server

import (
	"context"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/platform"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
	"github.com/crmcycle/crm/services/marketing/rpc"
)

// Name is the service's target name.
const Name = "marketing"

// Service is the mountable marketing service.
type Service struct {
	rpc       *rpc.Server
	leads     *marketing.Leads
	reactions *marketing.Reactions
	deps      platform.Deps
}

var (
	_ platform.Service    = (*Service)(nil)
	_ platform.Reactor    = (*Service)(nil)
	_ platform.Background = (*Service)(nil)
)

// churnSweepInterval is how often the churn schedule is read.
const churnSweepInterval = time.Minute

// New builds the service from the process's shared parts.
func New(deps platform.Deps) (*Service, error) {
	// Lead indexes written before they were bucketed are moved first (once per Redis).
	if err := redisstore.MigrateLayout(context.Background(), deps.Redis, deps.Logger); err != nil {
		return nil, err
	}
	store := redisstore.New(deps.Redis, deps.Keys)
	publisher := events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	loyalty := marketing.NewLoyalty(store, publisher, validator, deps.Now)
	lifecycle := marketing.NewLifecycle(store, publisher, deps.Now)
	audit := events.Recorder{Publisher: publisher, Redis: deps.Redis, Keys: deps.Keys, Now: deps.Now}
	leads := marketing.NewLeads(store, publisher, validator, deps.Now)
	return &Service{rpc: rpc.New(rpc.UseCases{
		Leads:     leads,
		Customers: marketing.NewCustomers(store, publisher, deps.Now),
		Campaigns: marketing.NewCampaigns(store, publisher, validator, deps.Now),
		Loyalty:   loyalty,
		Referrals: marketing.NewReferrals(store, publisher, deps.Now),
		Scoring:   marketing.NewScoring(store, publisher, validator, deps.Now),
		Lifecycle: lifecycle.RequiringCustomers(),
		Segments:  marketing.NewSegments(store, publisher, deps.Now),
		Audit:     audit,
		Imports: &importer.Runner{Redis: deps.Redis, Keys: deps.Keys, Service: Name, Logger: deps.Logger, InFlight: deps.ImportBatchesInFlight, MaxBytes: deps.ImportMaxBytes,
			Ops: operations.New(deps.Redis, deps.Keys, Name, deps.Now), Tokens: deps.PageTokens, Audit: audit, Cancelled: marketingv1.EventOperationCancelled},
	}, deps.PageTokens),
		leads:     leads,
		reactions: marketing.NewReactions(store, lifecycle, loyalty, publisher, deps.Now),
		deps:      deps,
	}, nil
}

// Name implements platform.Service.
func (s *Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }

// Subscriptions implements platform.Reactor: marketing closes the CRM loop on sales, product and
// support events (conversions, orders, subscriptions, adoption, NPS, SLA breaches).
func (s *Service) Subscriptions() []events.Subscription {
	return events.Subscribe(Name, s.reactions.Routes()...)
}

// RunBackground implements platform.Background: on a timer, over every partition, customers whose
// churn window ran out become CHURNED; and the recently touched leads of customers erased or
// merged anywhere are dropped (marketing.Leads.FollowEnded).
func (s *Service) RunBackground(ctx context.Context) error {
	var g errgroup.Group
	g.Go(func() error {
		s.leads.FollowEnded(ctx, s.deps.Redis)
		return nil
	})
	g.Go(func() error {
		platform.EveryPartition(ctx, s.deps, "marketing.churn", churnSweepInterval, func(ctx context.Context, p int) error {
			if _, err := s.reactions.SweepChurn(ctx, p); err != nil {
				return fmt.Errorf("marketing churn sweep: %w", err)
			}
			return nil
		})
		return nil
	})
	return g.Wait()
}
