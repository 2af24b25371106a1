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
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/servicetest"
	"github.com/crmcycle/crm/pkg/tlstest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
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
	checkRevocationReachesEveryProcess(t, suite, key)

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

// serviceRead is one authenticated read per service, made straight to its process.
func serviceRead(conn *grpc.ClientConn, service string) func(ctx context.Context) error {
	switch service {
	case "marketing":
		return func(ctx context.Context) error {
			_, err := marketingv1.NewMarketingServiceClient(conn).ListLeads(ctx, &marketingv1.ListLeadsRequest{})
			return err
		}
	case "sales":
		return func(ctx context.Context) error {
			_, err := salesv1.NewSalesServiceClient(conn).ListAccounts(ctx, &salesv1.ListAccountsRequest{})
			return err
		}
	case "product":
		return func(ctx context.Context) error {
			_, err := productv1.NewProductServiceClient(conn).ListProducts(ctx, &productv1.ListProductsRequest{})
			return err
		}
	case "support":
		return func(ctx context.Context) error {
			_, err := supportv1.NewSupportServiceClient(conn).ListTickets(ctx, &supportv1.ListTicketsRequest{})
			return err
		}
	}
	return func(ctx context.Context) error {
		_, err := integrationv1.NewIntegrationServiceClient(conn).ListApiKeys(ctx, &integrationv1.ListApiKeysRequest{})
		return err
	}
}

// checkRevocationReachesEveryProcess revokes, through the gateway, a key that clients are calling
// every service's process with: each process refuses it within a second, though each caches keys
// for 30. Then a rotation with an overlap: both secrets work everywhere until the overlap ends.
func checkRevocationReachesEveryProcess(t *testing.T, suite *processSuite, admin string) {
	sys := suite.system()
	create := func() (id, secret string) {
		r := sys.do(t, http.MethodPost, "/v1/apiKeys", admin, []byte(`{"displayName":"caller","scopes":["admin"]}`))
		if r.status != http.StatusOK {
			t.Fatalf("create a key: %d %s", r.status, r.body)
		}
		body := r.json(t)
		return body["apiKey"].(map[string]any)["id"].(string), body["secret"].(string)
	}
	victimID, victim := create()
	reads := map[string]func(context.Context) error{}
	for _, name := range serviceTargets {
		conn, err := grpc.NewClient(suite.addrs[name], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		reads[name] = serviceRead(conn, name)
	}
	call := func(name, secret string) error {
		ctx, cancel := context.WithTimeout(servicetest.WithKey(context.Background(), secret), 5*time.Second)
		defer cancel()
		return reads[name](ctx)
	}
	for name := range reads { // every process has the key in its cache
		if err := call(name, victim); err != nil {
			t.Fatalf("%s with the new key: %v", name, err)
		}
	}
	refusedAt := map[string]chan time.Time{}
	stop := make(chan struct{})
	for name := range reads {
		refusedAt[name] = make(chan time.Time, 1)
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if status.Code(call(name, victim)) == codes.Unauthenticated {
					refusedAt[name] <- time.Now()
					return
				}
			}
		}()
	}
	r := sys.do(t, http.MethodPost, "/v1/apiKeys/"+victimID+":revoke", admin, []byte(`{}`))
	revoked := time.Now()
	if r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	for name, at := range refusedAt {
		select {
		case when := <-at:
			if d := when.Sub(revoked); d > time.Second {
				t.Errorf("%s refused the revoked key after %v, want within 1s", name, d)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("%s still accepts the revoked key 3s later", name)
		}
	}
	close(stop)

	rotatedID, old := create()
	r = sys.do(t, http.MethodPost, "/v1/apiKeys/"+rotatedID+":rotate", admin, []byte(`{"overlapSeconds":"2"}`))
	if r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	rotated := time.Now()
	fresh := r.json(t)["secret"].(string)
	for name := range reads {
		for _, secret := range []string{old, fresh} {
			if err := call(name, secret); err != nil && time.Since(rotated) < 2*time.Second {
				t.Errorf("%s within the rotation's overlap: %v", name, err)
			}
		}
	}
	for name := range reads {
		waitFor(t, name+" refusing the old secret after the overlap", func() codes.Code { return status.Code(call(name, old)) },
			func(c codes.Code) bool { return c == codes.Unauthenticated })
		if err := call(name, fresh); err != nil {
			t.Errorf("%s with the rotated secret: %v", name, err)
		}
	}
	if time.Since(rotated) < 2*time.Second {
		t.Error("the old secret stopped before its overlap ended")
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

// TestKillingAServiceProcessMidFlow kills the marketing process with SIGKILL while clients capture
// leads and place orders through the gateway process, and starts it again: clients see successes
// or 503s with Retry-After, every acknowledged write is there, and the order events marketing
// missed or had in hand when it died are reacted to exactly once after it returns.
func TestKillingAServiceProcessMidFlow(t *testing.T) {
	suite := startProcessSuite(t)
	_, key := suite.newKey()
	sys := suite.system()
	load := startLoad(t, sys, key, 2)
	// The load runs a moment before the crash, and the process stays down a moment: the scenario.
	time.Sleep(time.Second)
	suite.kill("marketing")
	time.Sleep(time.Second)
	suite.restart("marketing")
	checkHonestAndKept(t, sys, key, load.recovered(t))
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
