// Package gateway is the REST edge: grpc-gateway routes to the services over gRPC, AIP-193 JSON
// errors, the caller's credential, idempotency key and request id forwarded, the HTTP conventions
// of DESIGN §3 (X-Request-Id, ETag and If-Match, CORS, 405 with Allow, strict decoding), the
// OpenAPI document and its docs page, all traced with otelhttp.
package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/telemetry"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Config of the REST edge.
type Config struct {
	Addr         string
	MaxBodyBytes int64
	// MaxImportBytes bounds an import's body, which is streamed rather than read whole.
	MaxImportBytes int64
	// CORSOrigins are the browser origins allowed to call the API, comma-separated ("*" for any);
	// none by default.
	CORSOrigins string
}

// RegisterFlags registers the gateway flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "http-addr", ":8080", "REST gateway listen address")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 1<<30, "largest accepted import file (streamed, never held whole), through the gateway (413) and over the services' gRPC Import streams")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "browser origins allowed to call the API, comma-separated (* for any)")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Addr == "" || c.MaxBodyBytes <= 0 || c.MaxImportBytes <= 0 {
		return errors.New("gateway: --http-addr, a positive --max-body-bytes and --max-import-bytes are required")
	}
	return nil
}

// Backends are the connections to the services. One left nil is a service this deployment does
// not run (crm dev without integration, say): its routes answer 503 UNAVAILABLE with the reason
// SERVICE_NOT_RUNNING.
type Backends struct {
	Marketing, Sales, Product, Support, Integration grpc.ClientConnInterface
}

// notRunning is the connection to a service the deployment does not run: every call fails.
type notRunning string

func (n notRunning) err() error {
	st, err := status.New(codes.Unavailable, "the "+string(n)+" service does not run in this deployment").
		WithDetails(&errdetails.ErrorInfo{Reason: "SERVICE_NOT_RUNNING", Domain: "gateway.crm", Metadata: map[string]string{"service": string(n)}})
	if err != nil {
		return status.Error(codes.Unavailable, "the "+string(n)+" service does not run in this deployment")
	}
	return st.Err()
}

func (n notRunning) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return n.err()
}

func (n notRunning) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, n.err()
}

// orNotRunning fills the backends left nil.
func (b Backends) orNotRunning() Backends {
	for name, c := range map[string]*grpc.ClientConnInterface{"marketing": &b.Marketing, "sales": &b.Sales,
		"product": &b.Product, "support": &b.Support, "integration": &b.Integration} {
		if *c == nil {
			*c = notRunning(name)
		}
	}
	return b
}

// New returns the gateway's HTTP handler. ready reports readiness for /readyz.
func New(ctx context.Context, cfg Config, b Backends, tel *telemetry.Telemetry, ready func(context.Context) error) (http.Handler, error) {
	routes, err := newRouteTable(openAPIJSON)
	if err != nil {
		return nil, err
	}
	b = b.orNotRunning()
	rest := runtime.NewServeMux(
		runtime.WithErrorHandler(writeError),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithForwardResponseOption(setETag),
		runtime.WithForwardResponseOption(setReplayed),
		runtime.WithForwardResponseOption(restItemErrors),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		// The gateway sets every response header it promises itself (X-Request-Id, ETag,
		// Retry-After, Idempotent-Replayed); gRPC metadata stays internal instead of leaking as
		// Grpc-Metadata-*.
		runtime.WithOutgoingHeaderMatcher(dropMetadata),
		runtime.WithOutgoingTrailerMatcher(dropMetadata),
		runtime.WithMiddlewares(nameSpan),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, strictJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
	)
	for name, register := range map[string]func() error{
		"marketing": func() error {
			return marketingv1.RegisterMarketingServiceHandlerClient(ctx, rest, marketingv1.NewMarketingServiceClient(b.Marketing))
		},
		"sales": func() error {
			return salesv1.RegisterSalesServiceHandlerClient(ctx, rest, salesv1.NewSalesServiceClient(b.Sales))
		},
		"product": func() error {
			return productv1.RegisterProductServiceHandlerClient(ctx, rest, productv1.NewProductServiceClient(b.Product))
		},
		"support": func() error {
			return supportv1.RegisterSupportServiceHandlerClient(ctx, rest, supportv1.NewSupportServiceClient(b.Support))
		},
		"integration": func() error {
			return integrationv1.RegisterIntegrationServiceHandlerClient(ctx, rest, integrationv1.NewIntegrationServiceClient(b.Integration))
		},
	} {
		if err := register(); err != nil {
			return nil, fmt.Errorf("gateway: register %s: %w", name, err)
		}
	}
	for _, e := range exportRoutes(b) {
		// Registered after the generated handlers, so these win for the export paths.
		if err := rest.HandlePath(http.MethodGet, e.path, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			e.serve(rest, w, r)
		}); err != nil {
			return nil, fmt.Errorf("gateway: export route %s: %w", e.path, err)
		}
	}
	docYAML, err := openAPIYAML()
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			// The public port says why only for the store's state, which an operator must act on
			// and which tells nothing of the network; the admin port's /readyz says why for all.
			w.Header().Set("Retry-After", retryAfterSeconds)
			msg := "not ready"
			if errors.Is(err, keyspace.ErrNotInitialized) || errors.Is(err, keyspace.ErrPartitionMismatch) {
				msg += ": " + err.Error()
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIJSON)
	})
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(docYAML)
	})
	docs := docsHandler()
	mux.Handle("GET /docs", docs)
	mux.Handle("GET /docs/", docs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { noRoute(w, r) })
	edge := &conventions{routes: routes, maxBody: cfg.MaxBodyBytes, next: rest}
	files := newImports(rest, cfg.MaxImportBytes, b)
	api := otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := routes.lookup(r.URL.EscapedPath())
		labelRoute(r, m.named())
		if files.handles(r) {
			files.ServeHTTP(w, r)
			return
		}
		edge.serve(w, r, m)
	}), "gateway",
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
	// API routes bypass the ServeMux: a mux pattern on the request would make otelhttp rename the
	// span to it ("/v1/") after nameSpan gave it the route.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	if cfg.CORSOrigins != "" {
		h = cors.New(cors.Options{
			AllowedOrigins: strings.Split(cfg.CORSOrigins, ","),
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "If-Match", requestIDHeader},
			ExposedHeaders: []string{"ETag", requestIDHeader, "Retry-After", "Allow", "WWW-Authenticate", replayedHeader},
			MaxAge:         600,
		}).Handler(h)
	}
	return withRequestID(h), nil
}

// setETag puts the etag of the resource a response carries into the ETag header.
func setETag(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if tag := etagOf(m.ProtoReflect()); tag != "" {
		w.Header().Set("ETag", `"`+tag+`"`)
	}
	return nil
}

// replayedHeader tells that an answer is the stored one of an earlier request with the same
// Idempotency-Key, as Stripe's header does.
const replayedHeader = "Idempotent-Replayed"

// setReplayed sets Idempotent-Replayed on a replayed success; writeError does on a replayed error.
func setReplayed(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	setReplayedFrom(ctx, w)
	return nil
}

// setReplayedFrom copies the idempotency interceptor's replay mark from the call's header metadata.
func setReplayedFrom(ctx context.Context, w http.ResponseWriter) {
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok && slices.Contains(md.HeaderMD.Get(idempotency.ReplayedHeader), "true") {
		w.Header().Set(replayedHeader, "true")
	}
}

// labelRoute adds the request's route template (/v1/leads/{id}) to the HTTP server metrics and
// span as http.route: RED metrics per route, never per raw path (one series per id). A path that
// is no route gets none. The template comes from the route table, not grpc-gateway's match, so the
// requests the edge answers itself (400, 405, 413) and the import routes are labelled too.
func labelRoute(r *http.Request, route *routePath) {
	if route != nil {
		attr := semconv.HTTPRoute(route.template)
		labeler, _ := otelhttp.LabelerFromContext(r.Context())
		labeler.Add(attr)
		trace.SpanFromContext(r.Context()).SetAttributes(attr)
	}
}

// etagOf is a message's etag, or that of the one resource it holds ("" when none or several).
func etagOf(m protoreflect.Message) string {
	if fd := m.Descriptor().Fields().ByName("etag"); fd != nil && fd.Kind() == protoreflect.StringKind {
		return m.Get(fd).String()
	}
	var tags []string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() != nil && fd.Cardinality() != protoreflect.Repeated {
			if etag := fd.Message().Fields().ByName("etag"); etag != nil && etag.Kind() == protoreflect.StringKind {
				tags = append(tags, v.Message().Get(etag).String())
			}
		}
		return true
	})
	if len(tags) == 1 {
		return tags[0]
	}
	return ""
}

// forwardHeader forwards Idempotency-Key and X-Request-Id as gRPC metadata, and everything
// grpc-gateway forwards by default (Authorization among them).
func forwardHeader(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case "Idempotency-Key":
		return "idempotency-key", true
	case "X-Request-Id":
		return "x-request-id", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// dropMetadata keeps a service's response metadata out of the HTTP response.
func dropMetadata(string) (string, bool) { return "", false }

// nameSpan names the request span after its route template ("POST /v1/leads/{id}:qualify"), which
// is only known once grpc-gateway has matched it; raw paths would make one span name per id.
func nameSpan(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if pattern, ok := runtime.HTTPPattern(r.Context()); ok {
			trace.SpanFromContext(r.Context()).SetName(r.Method + " " + pattern.String())
		}
		next(w, r, params)
	}
}
