package rpc_test

import (
	"context"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// system is the marketing service on the real gRPC server and REST gateway, over a real Redis.
type system struct {
	*gatewaytest.Edge
	suite *servicetest.Suite
}

func marketingService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// startSystem starts marketing alone; options adjust the suite.
func startSystem(t *testing.T, options ...func(*servicetest.Options)) *system {
	t.Helper()
	opts := servicetest.Options{Services: []servicetest.Builder{marketingService}}
	for _, o := range options {
		o(&opts)
	}
	suite := servicetest.Start(t, opts)
	return &system{Edge: gatewaytest.Start(t, suite, gateway.Config{}), suite: suite}
}

func (s *system) newKey(t *testing.T, tenant string, scopes ...string) (string, string) {
	t.Helper()
	return s.suite.NewKey(t, tenant, scopes...)
}

func (s *system) marketing(key string) (marketingv1.MarketingServiceClient, context.Context) {
	return marketingv1.NewMarketingServiceClient(s.suite.Conn), servicetest.WithKey(context.Background(), key)
}
