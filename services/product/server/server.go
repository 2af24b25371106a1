// Package server wires the product service: Redis store, use cases, gRPC adapter, the consumer of
// sales orders and the timed renewal sweep.
package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/platform"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/product"
	"github.com/crmcycle/crm/services/product/redisstore"
	"github.com/crmcycle/crm/services/product/rpc"
)

// Name is the service's target name.
const Name = "product"

// sweepInterval is how often the renewal sweep and the adoption rescoring run over every tenant.
const sweepInterval = 30 * time.Second

// Service is the mountable product service.
type Service struct {
	rpc           *rpc.Server
	subscriptions *product.Subscriptions
	usage         *product.Usage
	merges        *product.Merges
	deps          platform.Deps
}

var (
	_ platform.Service    = (*Service)(nil)
	_ platform.Reactor    = (*Service)(nil)
	_ platform.Background = (*Service)(nil)
)

// New builds the service from the process's shared parts.
func New(deps platform.Deps) (*Service, error) {
	store := redisstore.New(deps.Redis, deps.Keys)
	publisher := events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	subs := product.NewSubscriptions(store, store, publisher, deps.Now)
	usage := product.NewUsage(store, store, store, publisher, deps.Now)
	audit := events.Recorder{Publisher: publisher, Redis: deps.Redis, Keys: deps.Keys, Now: deps.Now}
	return &Service{
		rpc: rpc.New(rpc.UseCases{
			Catalog:         product.NewCatalog(store, publisher, validator, deps.Now),
			Subscriptions:   subs,
			Usage:           usage,
			Recommendations: product.NewRecommendations(store, store),
			Audit:           audit,
			Imports: &importer.Runner{Redis: deps.Redis, Keys: deps.Keys, Service: Name, Logger: deps.Logger, InFlight: deps.ImportBatchesInFlight, MaxBytes: deps.ImportMaxBytes,
				Ops: operations.New(deps.Redis, deps.Keys, Name, deps.Now), Tokens: deps.PageTokens, Audit: audit, Cancelled: productv1.EventOperationCancelled},
			ImportStore: store,
		}, deps.PageTokens),
		subscriptions: subs,
		usage:         usage,
		merges:        product.NewMerges(store, usage),
		deps:          deps,
	}, nil
}

// Name implements platform.Service.
func (*Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }

// Subscriptions implements platform.Reactor: placed orders become subscriptions and entitlements;
// a customer merge moves the merged customer's subscriptions, entitlements and usage.
func (s *Service) Subscriptions() []events.Subscription {
	return events.Subscribe(Name, events.On(salesv1.EventOrderPlaced, s.subscriptions.OnOrderPlaced),
		events.On(marketingv1.EventCustomerMerged, s.merges.OnCustomerMerged))
}

// RunBackground implements platform.Background: on a timer, over every partition, the renewal sweep
// and the rescoring of adoption that fades without usage. Concurrent sweeps in other processes are
// safe: each change is conditional on the version read.
func (s *Service) RunBackground(ctx context.Context) error {
	platform.EveryPartition(ctx, s.deps, "product.renewal", sweepInterval, func(ctx context.Context, p int) error {
		var errs []error
		if err := s.subscriptions.SweepPartition(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("product renewal sweep: %w", err))
		}
		if err := s.usage.RescorePartition(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("product adoption rescoring: %w", err))
		}
		return errors.Join(errs...)
	})
	return nil
}
