// Package server wires the marketing service: Redis store, use cases and gRPC adapter.
package server

import (
	"buf.build/go/protovalidate"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
	"github.com/crmcycle/crm/services/marketing/rpc"
)

// Name is the service's target name.
const Name = "marketing"

// Service is the mountable marketing service.
type Service struct{ rpc *rpc.Server }

var _ platform.Service = (*Service)(nil)

// New builds the service from the process's shared parts.
func New(deps platform.Deps) (*Service, error) {
	store := redisstore.New(deps.Redis, deps.Keys)
	publisher := events.Publisher{Producer: Name, Propagator: deps.Telemetry.Propagator}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	return &Service{rpc: rpc.New(rpc.UseCases{
		Leads:     marketing.NewLeads(store, publisher, validator, deps.Now),
		Campaigns: marketing.NewCampaigns(store, publisher, validator, deps.Now),
		Loyalty:   marketing.NewLoyalty(store, publisher, validator, deps.Now),
		Referrals: marketing.NewReferrals(store, publisher, deps.Now),
		Scoring:   marketing.NewScoring(store, publisher, validator, deps.Now),
		Lifecycle: marketing.NewLifecycle(store, publisher, deps.Now),
		Segments:  marketing.NewSegments(store, publisher, deps.Now),
	}, deps.PageTokens)}, nil
}

// Name implements platform.Service.
func (s *Service) Name() string { return Name }

// Register implements platform.Service.
func (s *Service) Register(r grpc.ServiceRegistrar) { s.rpc.Register(r) }
