// Package server wires the sales service: Redis store, use cases, the clients of marketing and
// product, and the gRPC adapter.
package server

import (
	"context"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/platform"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
	"github.com/crmcycle/crm/services/sales/customerviews"
	"github.com/crmcycle/crm/services/sales/marketingclient"
	"github.com/crmcycle/crm/services/sales/productclient"
	"github.com/crmcycle/crm/services/sales/redisstore"
	"github.com/crmcycle/crm/services/sales/rpc"
)

// customerDeadline bounds the customer 360's fan-out (DESIGN §10 wants its p99 under 20 ms at half
// saturation; a second leaves room for a loaded machine while a dead peer still costs little).
const customerDeadline = time.Second

// Name is the service's target name.
const Name = "sales"

// Service is the mountable sales service.
type Service struct {
	rpc       *rpc.Server
	reactions *sales.Reactions
	known     *customerref.Checker
	redis     redis.UniversalClient
}

var (
	_ platform.Service    = (*Service)(nil)
	_ platform.Reactor    = (*Service)(nil)
	_ platform.Background = (*Service)(nil)
)

// New builds the service from the process's shared parts.
func New(deps platform.Deps) (*Service, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	marketing, err := deps.Dial("marketing")
	if err != nil {
		return nil, fmt.Errorf("sales: %w", err)
	}
	product, err := deps.Dial("product")
	if err != nil {
		return nil, fmt.Errorf("sales: %w", err)
	}
	support, err := deps.Dial("support")
	if err != nil {
		return nil, fmt.Errorf("sales: %w", err)
	}
	// Integration is optional: without it (no address known), the 360's timeline section says so.
	integration, dialErr := deps.Dial("integration")
	registry := marketingclient.New(marketing)
	known := customerref.NewChecker(func() (*grpc.ClientConn, error) { return marketing, nil }, customerref.DefaultSize, customerref.DefaultTTL)
	env := sales.Env{
		Store:     redisstore.New(deps.Redis, deps.Keys),
		Publisher: events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator},
		Validator: validator,
		Now:       deps.Now,
		Registry:  registry,
		Known:     known,
	}
	pricer := productclient.New(product)
	opportunities := sales.NewOpportunities(env, pricer)
	audit := events.Recorder{Publisher: env.Publisher, Redis: deps.Redis, Keys: deps.Keys, Now: deps.Now}
	return &Service{reactions: sales.NewReactions(env), known: known, redis: deps.Redis, rpc: rpc.New(rpc.UseCases{
		Accounts:      sales.NewAccounts(env),
		Conversions:   sales.NewConversions(env, registry, opportunities),
		Pipelines:     sales.NewPipelines(env),
		Opportunities: opportunities,
		Orders:        sales.NewOrders(env, pricer),
		Activities:    sales.NewActivities(env),
		Forecasts:     sales.NewForecasts(env),
		Values:        sales.NewValues(env),
		Customers: sales.NewCustomers(env, customerviews.NewMarketing(marketing), customerviews.NewProduct(product),
			customerviews.NewSupport(support), customerviews.NewTimeline(integration, dialErr), customerDeadline),
		Audit: audit,
		Imports: &importer.Runner{Redis: deps.Redis, Keys: deps.Keys, Service: Name, Logger: deps.Logger, InFlight: deps.ImportBatchesInFlight, MaxBytes: deps.ImportMaxBytes,
			Ops: operations.New(deps.Redis, deps.Keys, Name, deps.Now), Tokens: deps.PageTokens, Audit: audit, Cancelled: salesv1.EventOperationCancelled},
	}, deps.PageTokens)}, nil
}

// Subscriptions implements platform.Reactor: sales follows marketing's customer merges, so a
// person's value counts the orders of both records, and erasures, deleting the person's contacts.
func (s *Service) Subscriptions() []events.Subscription {
	return events.Subscribe(Name, s.reactions.Routes()...)
}

// RunBackground implements platform.Background: the customer check hears of erased and merged
// customers (every process does, not one replica of a consumer group).
func (s *Service) RunBackground(ctx context.Context) error { return s.known.Run(ctx, s.redis) }

// Name implements platform.Service.
func (s *Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }
