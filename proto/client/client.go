// Package client connects Go programs to the CRM Cycle gRPC API (:9090): one constructor per
// service, taking the server's address and an API key.
//
//	leads, closeConn, err := client.Marketing("crm.example.com:9090", key, client.WithTLS(nil))
//	if err != nil { ... }
//	defer closeConn()
//	r, err := leads.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "ada@example.com"}})
//
// The key travels as per-call credentials (authorization: Bearer <key>); reads (Get*, List*, and
// the other methods served over HTTP GET) are retried on UNAVAILABLE with gRPC's retry policy;
// connections are kept alive with pings. Errors are gRPC statuses with google.rpc details:
// status.Convert(err).Details() holds an *errdetails.ErrorInfo (reason) and, for invalid
// requests, an *errdetails.BadRequest naming the fields. Writes accept an idempotency key:
// WithIdempotencyKey(ctx, key).
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Option adjusts a connection.
type Option func(*options)

type options struct {
	tls      *tls.Config
	insecure bool
	retries  int
	dial     []grpc.DialOption
}

// WithTLS connects over TLS (cfg nil: the system's roots). Without it the connection is plaintext,
// for a server on localhost or behind a TLS-terminating proxy.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls, o.insecure = cfg, false
	}
}

// WithReadRetries sets how many times a read is tried in all on UNAVAILABLE (default 4; 1 turns
// retries off). Writes are never retried here: retry them with the same idempotency key.
func WithReadRetries(attempts int) Option { return func(o *options) { o.retries = attempts } }

// WithDialOptions adds gRPC dial options (interceptors, stats handlers, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithIdempotencyKey makes a write safe to retry: the server stores its first result for 24 h
// and replays it for the same key.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "idempotency-key", key)
}

// Each constructor returns the service's client and the function that closes its connection.

// Marketing connects to MarketingService: campaigns, leads, scoring, lifecycle, segments, loyalty.
func Marketing(addr, key string, opts ...Option) (marketingv1.MarketingServiceClient, func() error, error) {
	return dial(addr, key, marketingv1.File_crm_marketing_v1_marketing_service_proto.Services().Get(0), marketingv1.NewMarketingServiceClient, opts)
}

// Sales connects to SalesService: accounts, contacts, pipelines, opportunities, orders, forecast.
func Sales(addr, key string, opts ...Option) (salesv1.SalesServiceClient, func() error, error) {
	return dial(addr, key, salesv1.File_crm_sales_v1_sales_service_proto.Services().Get(0), salesv1.NewSalesServiceClient, opts)
}

// Product connects to ProductService: catalog, subscriptions, entitlements, usage, adoption.
func Product(addr, key string, opts ...Option) (productv1.ProductServiceClient, func() error, error) {
	return dial(addr, key, productv1.File_crm_product_v1_product_service_proto.Services().Get(0), productv1.NewProductServiceClient, opts)
}

// Support connects to SupportService: tickets, SLA policies, settings, NPS.
func Support(addr, key string, opts ...Option) (supportv1.SupportServiceClient, func() error, error) {
	return dial(addr, key, supportv1.File_crm_support_v1_support_service_proto.Services().Get(0), supportv1.NewSupportServiceClient, opts)
}

// Integration connects to IntegrationService: audit log, customer timeline, webhook endpoints and
// deliveries, API keys, integration settings.
func Integration(addr, key string, opts ...Option) (integrationv1.IntegrationServiceClient, func() error, error) {
	return dial(addr, key, integrationv1.File_crm_integration_v1_integration_service_proto.Services().Get(0), integrationv1.NewIntegrationServiceClient, opts)
}

// dial returns the service's client and the function that closes its connection.
func dial[C any](addr, key string, service protoreflect.ServiceDescriptor, newClient func(grpc.ClientConnInterface) C, opts []Option) (C, func() error, error) {
	var none C
	o := options{insecure: true, retries: 4}
	for _, opt := range opts {
		opt(&o)
	}
	transport := insecure.NewCredentials()
	if !o.insecure {
		transport = credentials.NewTLS(o.tls)
	}
	config, err := serviceConfig(service, o.retries)
	if err != nil {
		return none, nil, err
	}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(bearer{key: key, secure: !o.insecure}),
		grpc.WithDefaultServiceConfig(config),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, o.dial...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return none, nil, fmt.Errorf("client: %s: %w", service.FullName(), err)
	}
	return newClient(conn), conn.Close, nil
}

// serviceConfig retries the service's reads (the methods its HTTP rules serve with GET) on
// UNAVAILABLE, with backoff.
func serviceConfig(service protoreflect.ServiceDescriptor, attempts int) (string, error) {
	type name struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	var reads []name
	for i := range service.Methods().Len() {
		m := service.Methods().Get(i)
		if rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule); rule.GetGet() != "" {
			reads = append(reads, name{Service: string(service.FullName()), Method: string(m.Name())})
		}
	}
	if attempts < 2 || len(reads) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]any{"methodConfig": []any{map[string]any{
		"name": reads,
		"retryPolicy": map[string]any{
			"maxAttempts": attempts, "initialBackoff": "0.1s", "maxBackoff": "2s", "backoffMultiplier": 2.0,
			"retryableStatusCodes": []string{"UNAVAILABLE"},
		},
	}}})
	return string(b), err
}

// bearer sends the API key with every call.
type bearer struct {
	key    string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
