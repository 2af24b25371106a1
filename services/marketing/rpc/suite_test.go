package rpc_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// system is the marketing service on the real gRPC server and REST gateway, over a real Redis.
type system struct {
	*gatewaytest.Edge
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
	return &system{Edge: gatewaytest.Start(t, suite, gateway.Config{})}
}

func (s *system) marketing(key string) (marketingv1.MarketingServiceClient, context.Context) {
	return marketingv1.NewMarketingServiceClient(s.Suite.Conn), servicetest.WithKey(context.Background(), key)
}

// footprint counts the tenant's marketing keys and events, to prove that a refused request wrote
// nothing.
func (s *system) footprint(t *testing.T, tenant string) (keys, events int) {
	t.Helper()
	return s.Suite.Footprint(t, server.Name, tenant)
}

// events returns the tenant's marketing events of one type (every type when empty), oldest first.
func (s *system) events(t *testing.T, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	return s.Suite.Events(t, server.Name, tenant, eventType)
}

// campaignBody is a campaign with a budget, a cost and a window.
const campaignBody = `{"displayName":"Spring webinar","channel":"CHANNEL_EMAIL",
	"budget":{"currencyCode":"EUR","units":"1000"},"actualCost":{"currencyCode":"EUR","units":"300"},
	"startTime":"2026-03-01T00:00:00Z","endTime":"2026-04-01T00:00:00Z"}`

func (s *system) createCampaign(t *testing.T, key, body string) map[string]any {
	t.Helper()
	return s.OK(t, http.MethodPost, "/v1/campaigns", key, body)
}

// newCustomer registers a new person in the key's tenant and returns their customer id: writes
// about a customer need one the registry has.
func (s *system) newCustomer(t *testing.T, key string) string {
	t.Helper()
	return s.OK(t, http.MethodPost, "/v1/customers:resolve", key,
		`{"email":"`+uuid.NewString()+`@example.com","create":true}`)["customer"].(map[string]any)["customerId"].(string)
}

func (s *system) captureLead(t *testing.T, key, body string) map[string]any {
	t.Helper()
	return s.OK(t, http.MethodPost, "/v1/leads", key, body)
}
