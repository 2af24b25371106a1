package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/tlstest"
)

// TestServeEachServiceInItsOwnProcess runs the built binary the way Kubernetes would: one
// `crm serve --target=X` process per service and one for the gateway, wired by address flags.
func TestServeEachServiceInItsOwnProcess(t *testing.T) {
	suite := startProcessSuite(t)
	_, key := suite.newKey()
	sys := suite.system()
	if r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"multi@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("capture through the gateway process: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/leads", key, nil); r.status != http.StatusOK || len(r.json(t)["leads"].([]any)) != 1 {
		t.Fatalf("list through the gateway process: %d %s", r.status, r.body)
	}

	// SIGTERM: every process drains and exits cleanly.
	for target := range suite.procs {
		if err := suite.stop(target); err != nil {
			t.Errorf("%s exited with %v after SIGTERM", target, err)
		}
	}

	// The capture is one trace across two processes: the gateway's client span is the parent of
	// marketing's server span.
	spans := suite.exportedSpans()
	parents := map[string]exportedSpan{}
	for _, sp := range spans {
		parents[sp.SpanContext.SpanID] = sp
	}
	var crossed bool
	for _, sp := range spans {
		if p, ok := parents[sp.Parent.SpanID]; ok && sp.Service == "marketing" && p.Service == gatewayTarget &&
			sp.Name == "crm.marketing.v1.MarketingService/CaptureLead" {
			crossed = true
		}
	}
	if !crossed {
		t.Errorf("no CaptureLead span in marketing whose parent is in the gateway process among %d spans", len(spans))
	}
}

// TestServeEachServiceInItsOwnProcessOverTLS runs the processes with certificates of a private
// CA made in the test and --tls-ca, with mutual TLS between them: REST through the gateway process,
// gRPC, and a call from sales to product across processes all verify.
func TestServeEachServiceInItsOwnProcessOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "crm-test")
	cert, key := ca.Issue(t, "crm-server")
	clientCert, clientKey := ca.Issue(t, "crm-client")
	suite := startProcessSuiteWith(t, ca.ClientConfig(t, clientCert, clientKey), "--tls-cert", cert, "--tls-key", key,
		"--tls-ca", ca.File, "--tls-client-cert", clientCert, "--tls-client-key", clientKey, "--tls-require-client-cert")
	_, secret := suite.newKey()
	sys := suite.system()
	if r := sys.do(t, http.MethodPost, "/v1/leads", secret, []byte(`{"email":"tls@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("REST through the gateway process over TLS: %d %s", r.status, r.body)
	}
	product := sys.createProduct(t, secret, productBody("TLS-M", "TLS", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	contact := sys.do(t, http.MethodPost, "/v1/contacts", secret, []byte(`{"email":"tls-buyer@example.com"}`))
	if contact.status != http.StatusOK {
		t.Fatalf("contact: %d %s", contact.status, contact.body)
	}
	order := sys.do(t, http.MethodPost, "/v1/orders", secret, fmt.Appendf(nil,
		`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":"1"}]}`, contact.json(t)["customerId"], product))
	if order.status != http.StatusOK {
		t.Fatalf("an order priced by the product process over mutual TLS: %d %s", order.status, order.body)
	}
	// Without a client certificate the services take no call.
	conn, err := grpc.NewClient(suite.addrs["marketing"], grpc.WithTransportCredentials(credentials.NewTLS(ca.ClientConfig(t, "", ""))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a call without a client certificate: %v, want it refused (UNAVAILABLE)", err)
	}
}

func waitServing(t *testing.T, addr string, creds credentials.TransportCredentials) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s never became SERVING: %v", addr, err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
	}
}

func waitHTTP(t *testing.T, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("%s not ready: %v", url, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
