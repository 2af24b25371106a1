package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
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

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
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
