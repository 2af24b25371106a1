package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// Lead ids that make the fake service misbehave in a given way.
const (
	idOK       = "0190a1b2-0000-7000-8000-000000000001"
	idNotFound = "0190a1b2-0000-7000-8000-000000000002"
	idPlainErr = "0190a1b2-0000-7000-8000-000000000003"
	idPanic    = "0190a1b2-0000-7000-8000-000000000004"
	idBlock    = "0190a1b2-0000-7000-8000-000000000005"
)

const marketingService = "crm.marketing.v1.MarketingService"

// fakeMarketing answers GetLead by the id asked for, and echoes the caller's tenant in the lead's
// company so tests see the principal reached the handler.
// emailRefused is the e-mail whose capture the fake refuses with a client error.
const emailRefused = "refused@example.com"

type fakeMarketing struct {
	marketingv1.UnimplementedMarketingServiceServer
	// faults, by lead id, make GetLead fail with what the function returns.
	faults  map[string]func(context.Context) error
	calls   atomic.Int64
	started chan struct{}
	release chan struct{}
	// cause is the events.Cause the last CaptureLead saw.
	cause atomic.Pointer[events.Cause]
}

func (f *fakeMarketing) GetLead(ctx context.Context, req *marketingv1.GetLeadRequest) (*marketingv1.GetLeadResponse, error) {
	f.calls.Add(1)
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apierr.New(apierr.Internal, "NO_PRINCIPAL", "handler ran without a principal")
	}
	if fault, ok := f.faults[req.GetId()]; ok {
		return nil, fault(ctx)
	}
	switch req.GetId() {
	case idNotFound:
		return nil, apierr.New(apierr.NotFound, "LEAD_NOT_FOUND", "lead not found")
	case idPlainErr:
		return nil, errors.New("secret db text")
	case idPanic:
		panic("secret panic text")
	case idBlock:
		f.started <- struct{}{}
		<-f.release
	}
	return &marketingv1.GetLeadResponse{Lead: &marketingv1.Lead{Id: req.GetId(), Company: p.TenantID}}, nil
}

func (f *fakeMarketing) CaptureLead(ctx context.Context, req *marketingv1.CaptureLeadRequest) (*marketingv1.CaptureLeadResponse, error) {
	f.calls.Add(1)
	cause := events.CauseFrom(ctx)
	f.cause.Store(&cause)
	if req.GetLead().GetEmail() == emailRefused {
		return nil, apierr.New(apierr.FailedPrecondition, "LEAD_REFUSED", "the lead is refused")
	}
	return &marketingv1.CaptureLeadResponse{Lead: &marketingv1.Lead{Id: idOK, Email: req.GetLead().GetEmail()}}, nil
}

// syncBuffer is a log sink the server writes from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pingSwitch makes the server's Redis client fail PING while down is set, as if Redis had gone.
type pingSwitch struct{ down atomic.Bool }

func (h *pingSwitch) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pingSwitch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "ping" && h.down.Load() {
			cmd.SetErr(errors.New("redis unreachable (test)"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *pingSwitch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type harness struct {
	conn    *grpc.ClientConn
	fake    *fakeMarketing
	tenant  string
	keys    map[string]string // name -> secret
	logs    *syncBuffer
	redis   *pingSwitch
	spans   *tracetest.SpanRecorder
	stop    context.CancelFunc
	served  chan error
	release func()
}

func start(t *testing.T, shutdownTimeout time.Duration) *harness {
	t.Helper()
	ctx := context.Background()
	rdb := redistest.Client(t)
	store := auth.NewStore(rdb)
	tenant := redistest.Tenant(t)
	if _, err := store.CreateTenant(ctx, tenant, "Test"); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for name, scopes := range map[string][]string{
		"read":  {"marketing.read"},
		"write": {"marketing.read", "marketing.write"},
		"sales": {"sales.read", "sales.write"},
		"admin": {"admin"},
	} {
		k, err := store.CreateKey(ctx, tenant, scopes)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k.Secret
	}

	h := &harness{
		fake:   &fakeMarketing{started: make(chan struct{}, 1), release: make(chan struct{})},
		tenant: tenant,
		keys:   keys,
		logs:   &syncBuffer{},
		redis:  &pingSwitch{},
		spans:  tracetest.NewSpanRecorder(),
		served: make(chan error, 1),
	}
	var once sync.Once
	h.release = func() { once.Do(func() { close(h.fake.release) }) }
	rdb.AddHook(h.redis)

	srv, err := grpcserver.New(grpcserver.Config{
		ShutdownTimeout: shutdownTimeout,
		HealthInterval:  50 * time.Millisecond,
	}, grpcserver.Deps{
		Logger:        slog.New(slog.NewJSONHandler(h.logs, nil)),
		Telemetry:     telemetry.ForTest(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans)), noop.NewMeterProvider()),
		Authenticator: auth.NewAuthenticator(store, time.Minute),
		Redis:         rdb,
	})
	if err != nil {
		t.Fatalf("grpcserver.New: %v", err)
	}
	marketingv1.RegisterMarketingServiceServer(srv, h.fake)

	lis := bufconn.Listen(1 << 20)
	serveCtx, stop := context.WithCancel(ctx)
	h.stop = stop
	go func() { h.served <- srv.Serve(serveCtx, lis) }()

	h.conn, err = grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.release()
		stop()
		<-h.served
		_ = h.conn.Close()
	})
	return h
}

// withAuthorization returns ctx carrying the authorization metadata value.
func withAuthorization(ctx context.Context, value string) context.Context {
	if value == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func bearer(name string) func(h *harness) string {
	return func(h *harness) string { return "Bearer " + h.keys[name] }
}

func literal(v string) func(h *harness) string { return func(*harness) string { return v } }

func getLead(id string) func(context.Context, marketingv1.MarketingServiceClient) (proto.Message, error) {
	return func(ctx context.Context, c marketingv1.MarketingServiceClient) (proto.Message, error) {
		return c.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id})
	}
}

func captureLead(lead *marketingv1.Lead) func(context.Context, marketingv1.MarketingServiceClient) (proto.Message, error) {
	return func(ctx context.Context, c marketingv1.MarketingServiceClient) (proto.Message, error) {
		return c.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: lead})
	}
}

func TestUnaryCalls(t *testing.T) {
	h := start(t, 5*time.Second)
	client := marketingv1.NewMarketingServiceClient(h.conn)
	tests := []struct {
		name          string
		authorization func(*harness) string
		call          func(context.Context, marketingv1.MarketingServiceClient) (proto.Message, error)
		wantCode      codes.Code
		wantMsg       string // exact message; "" to skip
		wantReason    string // ErrorInfo.reason; "" for no ErrorInfo
		wantDomain    string
		wantMetadata  map[string]string
		wantFields    []string // BadRequest field paths
		wantCalled    bool
		wantResp      proto.Message // nil to skip
	}{
		{
			name:          "read key gets a lead",
			authorization: bearer("read"),
			call:          getLead(idOK),
			wantCode:      codes.OK,
			wantCalled:    true,
			wantResp:      &marketingv1.GetLeadResponse{Lead: &marketingv1.Lead{Id: idOK, Company: "TENANT"}},
		},
		{
			name:          "bearer scheme is case-insensitive",
			authorization: func(h *harness) string { return "bearer " + h.keys["read"] },
			call:          getLead(idOK),
			wantCode:      codes.OK,
			wantCalled:    true,
		},
		{
			name:          "admin key reads",
			authorization: bearer("admin"),
			call:          getLead(idOK),
			wantCode:      codes.OK,
			wantCalled:    true,
		},
		{
			name:          "write key captures a lead",
			authorization: bearer("write"),
			call:          captureLead(&marketingv1.Lead{Email: "ada@example.com"}),
			wantCode:      codes.OK,
			wantCalled:    true,
			wantResp:      &marketingv1.CaptureLeadResponse{Lead: &marketingv1.Lead{Id: idOK, Email: "ada@example.com"}},
		},
		{
			name:          "no authorization metadata",
			authorization: literal(""),
			call:          getLead(idOK),
			wantCode:      codes.Unauthenticated,
			wantReason:    "UNAUTHENTICATED",
			wantDomain:    "marketing.crm",
		},
		{
			name:          "wrong key",
			authorization: literal("Bearer crm_not-a-key"),
			call:          getLead(idOK),
			wantCode:      codes.Unauthenticated,
			wantReason:    "UNAUTHENTICATED",
			wantDomain:    "marketing.crm",
		},
		{
			name:          "valid key under another scheme",
			authorization: func(h *harness) string { return "Basic " + h.keys["admin"] },
			call:          getLead(idOK),
			wantCode:      codes.Unauthenticated,
			wantReason:    "UNAUTHENTICATED",
		},
		{
			name:          "valid key without a scheme",
			authorization: func(h *harness) string { return h.keys["admin"] },
			call:          getLead(idOK),
			wantCode:      codes.Unauthenticated,
		},
		{
			name:          "key of another service",
			authorization: bearer("sales"),
			call:          getLead(idOK),
			wantCode:      codes.PermissionDenied,
			wantReason:    "MISSING_SCOPE",
			wantDomain:    "marketing.crm",
			wantMetadata:  map[string]string{"scope": "marketing.read"},
		},
		{
			name:          "read key cannot write",
			authorization: bearer("read"),
			call:          captureLead(&marketingv1.Lead{Email: "ada@example.com"}),
			wantCode:      codes.PermissionDenied,
			wantReason:    "MISSING_SCOPE",
			wantDomain:    "marketing.crm",
			wantMetadata:  map[string]string{"scope": "marketing.write"},
		},
		{
			name:          "domain error",
			authorization: bearer("read"),
			call:          getLead(idNotFound),
			wantCode:      codes.NotFound,
			wantMsg:       "lead not found",
			wantReason:    "LEAD_NOT_FOUND",
			wantDomain:    "marketing.crm",
			wantCalled:    true,
		},
		{
			name:          "plain error is hidden",
			authorization: bearer("read"),
			call:          getLead(idPlainErr),
			wantCode:      codes.Internal,
			wantMsg:       "internal error",
			wantReason:    "INTERNAL",
			wantDomain:    "marketing.crm",
			wantCalled:    true,
		},
		{
			name:          "panic is hidden",
			authorization: bearer("read"),
			call:          getLead(idPanic),
			wantCode:      codes.Internal,
			wantMsg:       "internal error",
			wantReason:    "INTERNAL",
			wantDomain:    "marketing.crm",
			wantCalled:    true,
		},
		{
			name:          "served after a panic",
			authorization: bearer("read"),
			call:          getLead(idOK),
			wantCode:      codes.OK,
			wantCalled:    true,
		},
		{
			name:          "invalid id",
			authorization: bearer("read"),
			call:          getLead("not-a-uuid"),
			wantCode:      codes.InvalidArgument,
			wantReason:    "INVALID_ARGUMENT",
			wantDomain:    "marketing.crm",
			wantFields:    []string{"id"},
		},
		{
			name:          "missing e-mail",
			authorization: bearer("write"),
			call:          captureLead(&marketingv1.Lead{GivenName: "Ada"}),
			wantCode:      codes.InvalidArgument,
			wantReason:    "INVALID_ARGUMENT",
			wantDomain:    "marketing.crm",
			wantFields:    []string{"lead.email"},
		},
		{
			name:          "several bad fields",
			authorization: bearer("write"),
			call:          captureLead(&marketingv1.Lead{Email: "ada@example.com", CampaignId: "nope", GivenName: strings.Repeat("a", 101)}),
			wantCode:      codes.InvalidArgument,
			wantReason:    "INVALID_ARGUMENT",
			wantDomain:    "marketing.crm",
			wantFields:    []string{"lead.given_name", "lead.campaign_id"},
		},
		{
			name:          "missing lead",
			authorization: bearer("write"),
			call:          captureLead(nil),
			wantCode:      codes.InvalidArgument,
			wantReason:    "INVALID_ARGUMENT",
			wantDomain:    "marketing.crm",
			wantFields:    []string{"lead"},
		},
		{
			name:          "invalid request without a key is unauthenticated first",
			authorization: literal(""),
			call:          getLead("not-a-uuid"),
			wantCode:      codes.Unauthenticated,
			wantReason:    "UNAUTHENTICATED",
		},
		{
			name:          "invalid request with a key of the wrong scope is denied first",
			authorization: bearer("sales"),
			call:          captureLead(nil),
			wantCode:      codes.PermissionDenied,
			wantReason:    "MISSING_SCOPE",
		},
		{
			name:          "unimplemented method",
			authorization: bearer("read"),
			call: func(ctx context.Context, c marketingv1.MarketingServiceClient) (proto.Message, error) {
				return c.ListLeads(ctx, &marketingv1.ListLeadsRequest{})
			},
			wantCode: codes.Unimplemented,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx = withAuthorization(ctx, tt.authorization(h))
			callsBefore := h.fake.calls.Load()

			resp, err := tt.call(ctx, client)

			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code: got %v, want %v (%v)", got, tt.wantCode, err)
			}
			if called := h.fake.calls.Load() != callsBefore; called != tt.wantCalled {
				t.Errorf("handler called: got %v, want %v", called, tt.wantCalled)
			}
			if tt.wantResp != nil {
				want := proto.Clone(tt.wantResp)
				if r, ok := want.(*marketingv1.GetLeadResponse); ok && r.GetLead().GetCompany() == "TENANT" {
					r.Lead.Company = h.tenant
				}
				if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
					t.Errorf("response (-want +got):\n%s", diff)
				}
			}
			if tt.wantCode == codes.OK {
				return
			}
			st := status.Convert(err)
			if tt.wantMsg != "" && st.Message() != tt.wantMsg {
				t.Errorf("message: got %q, want %q", st.Message(), tt.wantMsg)
			}
			if wire := prototext.Format(st.Proto()); strings.Contains(wire, "secret") {
				t.Errorf("status leaks internal text: %s", wire)
			}

			var info *errdetails.ErrorInfo
			var fields []string
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.BadRequest:
					for _, v := range d.GetFieldViolations() {
						fields = append(fields, v.GetField())
						if v.GetDescription() == "" {
							t.Errorf("violation of %s has no description", v.GetField())
						}
					}
				}
			}
			if tt.wantReason != "" {
				if info == nil {
					t.Fatalf("details: got %v, want an ErrorInfo", st.Details())
				}
				if info.GetReason() != tt.wantReason {
					t.Errorf("ErrorInfo.reason: got %q, want %q", info.GetReason(), tt.wantReason)
				}
				if tt.wantDomain != "" && info.GetDomain() != tt.wantDomain {
					t.Errorf("ErrorInfo.domain: got %q, want %q", info.GetDomain(), tt.wantDomain)
				}
				if tt.wantMetadata != nil {
					if diff := cmp.Diff(tt.wantMetadata, info.GetMetadata()); diff != "" {
						t.Errorf("ErrorInfo.metadata (-want +got):\n%s", diff)
					}
				}
			}
			if diff := cmp.Diff(tt.wantFields, fields, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
		})
	}

	// Internal causes are hidden from clients but not lost: the server log has them.
	logs := h.logs.String()
	for _, want := range []string{"secret db text", "secret panic text"} {
		if !strings.Contains(logs, want) {
			t.Errorf("server log lacks %q", want)
		}
	}
}

// recv reads a health stream until it reports want.
func recv(t *testing.T, stream healthpb.Health_WatchClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("health Watch: got %v while waiting for %v", err, want)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

func TestHealth(t *testing.T) {
	h := start(t, 5*time.Second)
	health := healthpb.NewHealthClient(h.conn)
	// The deadline bounds every wait below; no call carries a key.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	overall, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	service, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: marketingService})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, overall, healthpb.HealthCheckResponse_SERVING)
	recv(t, service, healthpb.HealthCheckResponse_SERVING)

	tests := []struct {
		service  string
		want     healthpb.HealthCheckResponse_ServingStatus
		wantCode codes.Code
	}{
		{service: "", want: healthpb.HealthCheckResponse_SERVING},
		{service: marketingService, want: healthpb.HealthCheckResponse_SERVING},
		{service: "crm.unknown.v1.UnknownService", wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run("Check "+tt.service, func(t *testing.T) {
			resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: tt.service})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code: got %v, want %v", got, tt.wantCode)
			}
			if err == nil && resp.GetStatus() != tt.want {
				t.Errorf("status: got %v, want %v", resp.GetStatus(), tt.want)
			}
		})
	}

	// Redis stops answering: not serving, then serving again when it is back.
	h.redis.down.Store(true)
	recv(t, overall, healthpb.HealthCheckResponse_NOT_SERVING)
	recv(t, service, healthpb.HealthCheckResponse_NOT_SERVING)
	h.redis.down.Store(false)
	recv(t, overall, healthpb.HealthCheckResponse_SERVING)
	recv(t, service, healthpb.HealthCheckResponse_SERVING)
}

func TestReflection(t *testing.T) {
	h := start(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection without a key: got %v, want an answer", err)
	}
	got := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range []string{marketingService, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !got[want] {
			t.Errorf("listed services: got %v, want %s among them", got, want)
		}
	}

	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: marketingService}}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("file containing %s: got %v, want its descriptor", marketingService, resp.GetErrorResponse())
	}
}

func TestTracing(t *testing.T) {
	h := start(t, 5*time.Second)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx,
		"authorization", "Bearer "+h.keys["read"],
		"traceparent", "00-"+traceID+"-"+parentID+"-01")
	// Probes' health checks make no spans (they come every few seconds from every replica).
	if _, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := marketingv1.NewMarketingServiceClient(h.conn).GetLead(ctx, &marketingv1.GetLeadRequest{Id: idOK}); err != nil {
		t.Fatal(err)
	}

	// The server span ends just after the response is sent: poll the recorder until it is there.
	const name = marketingService + "/GetLead"
	var span *sdktrace.ReadOnlySpan
	for span == nil {
		for _, s := range h.spans.Ended() {
			if s.Name() == name {
				span = &s
			}
		}
		if span == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("no ended span %q", name)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for _, s := range h.spans.Ended() {
		if strings.HasPrefix(s.Name(), "grpc.health.v1.Health/") {
			t.Errorf("a health check made span %q", s.Name())
		}
	}
	s := *span
	if got := s.SpanKind(); got != trace.SpanKindServer {
		t.Errorf("span kind: got %v, want %v", got, trace.SpanKindServer)
	}
	if got := s.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("trace id: got %s, want the caller's %s", got, traceID)
	}
	if got := s.Parent().SpanID().String(); got != parentID {
		t.Errorf("parent span: got %s, want the caller's %s", got, parentID)
	}
}

func TestShutdownDrains(t *testing.T) {
	h := start(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	health := healthpb.NewHealthClient(h.conn)
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, watch, healthpb.HealthCheckResponse_SERVING)

	inFlight := make(chan error, 1)
	go func() {
		_, err := marketingv1.NewMarketingServiceClient(h.conn).GetLead(
			withAuthorization(ctx, "Bearer "+h.keys["read"]), &marketingv1.GetLeadRequest{Id: idBlock})
		inFlight <- err
	}()
	select {
	case <-h.fake.started:
	case <-ctx.Done():
		t.Fatal("the blocking call never reached the handler")
	}

	h.stop()
	recv(t, watch, healthpb.HealthCheckResponse_NOT_SERVING)
	stopWatch() // the watch is a call in flight too; let the drain finish

	select {
	case err := <-h.served:
		t.Fatalf("Serve returned (%v) while a call was in flight", err)
	default:
	}
	h.release()
	select {
	case err := <-inFlight:
		if err != nil {
			t.Errorf("in-flight call during shutdown: got %v, want it completed", err)
		}
	case <-ctx.Done():
		t.Fatal("in-flight call did not finish")
	}
	select {
	case err := <-h.served:
		if err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
		h.served <- err // for the cleanup
	case <-ctx.Done():
		t.Fatal("Serve did not return after the drain")
	}

	_, err = health.Check(ctx, &healthpb.HealthCheckRequest{})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("Check after shutdown: got %v (%v), want %v", got, err, codes.Unavailable)
	}
}

func TestShutdownTimeoutCutsCalls(t *testing.T) {
	h := start(t, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	inFlight := make(chan error, 1)
	go func() {
		_, err := marketingv1.NewMarketingServiceClient(h.conn).GetLead(
			withAuthorization(ctx, "Bearer "+h.keys["read"]), &marketingv1.GetLeadRequest{Id: idBlock})
		inFlight <- err
	}()
	select {
	case <-h.fake.started:
	case <-ctx.Done():
		t.Fatal("the blocking call never reached the handler")
	}

	h.stop()
	// The handler is still blocked: Serve returns only because the drain timed out.
	select {
	case err := <-h.served:
		if err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
		h.served <- err
	case <-ctx.Done():
		t.Fatal("Serve did not return after the shutdown timeout")
	}
	select {
	case err := <-inFlight:
		if got := status.Code(err); got != codes.Unavailable {
			t.Errorf("cut call: got %v (%v), want %v", got, err, codes.Unavailable)
		}
	case <-ctx.Done():
		t.Fatal("the cut call did not return")
	}
}

// TestRequestIDInTheLog checks a call's log line carries the x-request-id the gateway forwards
// (a refused call: successful ones log at debug level).
func TestRequestIDInTheLog(t *testing.T) {
	h := start(t, 5*time.Second)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "log-req-31")
	if _, err := marketingv1.NewMarketingServiceClient(h.conn).GetLead(ctx, &marketingv1.GetLeadRequest{Id: idOK}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a call without a key: %v, want UNAUTHENTICATED", err)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"request_id":"log-req-31"`) {
		t.Fatalf("the call's log line lacks its request id:\n%s", logs)
	}
}
