package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/telemetry"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// bareMarketing answers like a server without this project's error mapping: raw statuses whose
// text is not for clients.
type bareMarketing struct {
	marketingv1.UnimplementedMarketingServiceServer
}

func (bareMarketing) CaptureLead(context.Context, *marketingv1.CaptureLeadRequest) (*marketingv1.CaptureLeadResponse, error) {
	return nil, status.Error(codes.Internal, "secret: panic at store.go:42")
}

// edgeOver serves the gateway with every backend on conn.
func edgeOver(t *testing.T, conn grpc.ClientConnInterface) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tel := telemetry.ForTest(tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
	h, err := gateway.New(ctx, gateway.Config{Addr: ":0", MaxBodyBytes: 1 << 16},
		gateway.Backends{Marketing: conn, Sales: conn, Product: conn, Support: conn}, tel,
		func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func post(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/leads", strings.NewReader(`{"email":"ada@example.com"}`))
	req.Header.Set("Authorization", "Bearer crm_whatever")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestTransportFaultsAreHonest: what the gateway's own connection to a service reports (a refused
// dial, a raw INTERNAL) becomes 503 with Retry-After or 500 "internal error", without its text.
func TestTransportFaultsAreHonest(t *testing.T) {
	unreachable, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unreachable.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bare := grpc.NewServer()
	marketingv1.RegisterMarketingServiceServer(bare, bareMarketing{})
	go func() { _ = bare.Serve(lis) }()
	t.Cleanup(bare.Stop)
	bareConn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bareConn.Close() })

	for _, tt := range []struct {
		name           string
		conn           grpc.ClientConnInterface
		wantStatus     int
		wantRetryAfter string
	}{
		{"service unreachable", unreachable, http.StatusServiceUnavailable, "1"},
		{"service answers a raw internal error", bareConn, http.StatusInternalServerError, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := edgeOver(t, tt.conn)
			resp, body := post(t, url)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Retry-After") != tt.wantRetryAfter {
				t.Fatalf("got %d Retry-After %q, want %d Retry-After %q: %s", resp.StatusCode,
					resp.Header.Get("Retry-After"), tt.wantStatus, tt.wantRetryAfter, body)
			}
			for _, leak := range []string{"secret", "127.0.0.1", "connection", "dial", "transport"} {
				if strings.Contains(body, leak) {
					t.Errorf("body carries %q: %s", leak, body)
				}
			}
		})
	}
}
