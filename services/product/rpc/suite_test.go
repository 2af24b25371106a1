package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	"github.com/crmcycle/crm/services/product/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// system is the product service, with its consumer of sales orders, on the real gRPC server and
// REST gateway, over a real Redis.
type system struct {
	*gatewaytest.Edge
}

func productService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// startSystem starts product alone.
func startSystem(t *testing.T, options ...func(*servicetest.Options)) *system {
	t.Helper()
	opts := servicetest.Options{Services: []servicetest.Builder{productService}}
	for _, o := range options {
		o(&opts)
	}
	suite := servicetest.Start(t, opts)
	return &system{Edge: gatewaytest.Start(t, suite, gateway.Config{})}
}

func (s *system) product(key string) (productv1.ProductServiceClient, context.Context) {
	return productv1.NewProductServiceClient(s.Suite.Conn), servicetest.WithKey(context.Background(), key)
}

// createProduct creates a product over REST and returns its JSON.
func (s *system) createProduct(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/v1/products", key, []byte(body))
	if r.Status != http.StatusOK {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

func productBody(sku, name, period string) string {
	return fmt.Sprintf(`{"sku":%q,"displayName":%q,"category":"crm","billingPeriod":%q,
		"price":{"currencyCode":"EUR","units":"10","nanos":500000000},
		"additionalPrices":[{"currencyCode":"USD","units":"12"}],"productLine":"suite","tier":1,
		"features":["reports","pipeline"]}`, sku, name, period)
}

// waitFor polls get until ok, or fails the test after a deadline.
func waitFor[T any](t *testing.T, what string, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: reactions cross the bus on a loaded machine
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 30s", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// second is the error of a call's two results, for tables of calls.
func second[T any](_ T, err error) error { return err }
