package rpc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// salesScopes are what a sales rep's key holds: converting reads the lead from marketing and
// pricing reads the catalog, both with the caller's credential.
var salesScopes = []string{"sales.read", "sales.write", "marketing.read", "product.read"}

// system is the sales service on the real gRPC server and REST gateway, over a real Redis, with
// fakes of the marketing leads and the product catalog it reads.
type system struct {
	*gatewaytest.Edge
	leads   *leadsFake
	catalog *catalogFake
}

func salesService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// startSystem starts sales alone with its fakes; options adjust the suite.
func startSystem(t testing.TB, options ...func(*servicetest.Options)) *system {
	t.Helper()
	leads, catalog := newLeadsFake(), newCatalogFake()
	opts := servicetest.Options{
		Services: []servicetest.Builder{salesService},
		Fakes: []func(grpc.ServiceRegistrar){
			func(r grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(r, leads) },
			func(r grpc.ServiceRegistrar) { productv1.RegisterProductServiceServer(r, catalog) },
		},
	}
	for _, o := range options {
		o(&opts)
	}
	suite := servicetest.Start(t, opts)
	return &system{Edge: gatewaytest.Start(t, suite, gateway.Config{}), leads: leads, catalog: catalog}
}

// sales returns a gRPC client of the sales service authenticated with key.
func (s *system) sales(key string) (salesv1.SalesServiceClient, context.Context) {
	return salesv1.NewSalesServiceClient(s.Suite.Conn), servicetest.WithKey(context.Background(), key)
}

// events decodes a tenant's sales events of one type, oldest first.
func (s *system) events(t *testing.T, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	return s.Suite.Events(t, server.Name, tenant, eventType)
}

// str reads a string field of a JSON object.
func str(m map[string]any, field string) string {
	v, _ := m[field].(string)
	return v
}

// obj reads an object field of a JSON object.
func obj(m map[string]any, field string) map[string]any {
	v, _ := m[field].(map[string]any)
	return v
}

// ids lists the ids of a list response's items.
func ids(m map[string]any, plural string) []string {
	items, _ := m[plural].([]any)
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = str(it.(map[string]any), "id")
	}
	return out
}
