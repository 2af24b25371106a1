package rpc_test

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// supportScopes are what a support agent's key holds in these tests.
// (writes about a customer check them in marketing's registry with the caller's key).
var supportScopes = []string{"support.read", "support.write", "marketing.read"}

const supportCustomer = "0192f3a0-0000-7000-8000-00000000c001"

// system is the support service on the real gRPC server and REST gateway, over a real Redis.
type system struct {
	*gatewaytest.Edge
	registry *servicetest.Registry
}

func supportService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// startSystem starts support alone; options adjust the suite (a fake product service, say).
func startSystem(t *testing.T, options ...func(*servicetest.Options)) *system {
	t.Helper()
	registry := &servicetest.Registry{}
	opts := servicetest.Options{Services: []servicetest.Builder{supportService}, Fakes: []func(grpc.ServiceRegistrar){registry.Register}}
	for _, o := range options {
		o(&opts)
	}
	suite := servicetest.Start(t, opts)
	return &system{Edge: gatewaytest.Start(t, suite, gateway.Config{}), registry: registry}
}

func (s *system) support(key string) (supportv1.SupportServiceClient, context.Context) {
	return supportv1.NewSupportServiceClient(s.Suite.Conn), servicetest.WithKey(context.Background(), key)
}

// createTicket opens a ticket over REST and returns its JSON.
func (s *system) createTicket(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/v1/tickets", key, []byte(body))
	if r.Status != http.StatusOK {
		t.Fatalf("create ticket: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// events decodes a tenant's support events of one type.
func (s *system) events(t *testing.T, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	return s.Suite.Events(t, server.Name, tenant, eventType)
}
