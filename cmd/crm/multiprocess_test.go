package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redistest"
)

// TestServeEachServiceInItsOwnProcess runs the built binary the way Kubernetes would: one
// `crm serve --target=X` process per service and one for the gateway, wired by address flags.
func TestServeEachServiceInItsOwnProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "crm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := func() string {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"serve", "--redis-url", redistest.URL(), "--admin-addr", port()}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}

	addrs := map[string]string{}
	var peers []string // every process knows where every service is, as in Kubernetes
	for _, s := range serviceTargets {
		addrs[s] = port()
		peers = append(peers, "--"+s+"-addr", addrs[s])
	}
	var procs []*exec.Cmd
	for _, s := range serviceTargets {
		procs = append(procs, start(append([]string{"--target", s, "--grpc-addr", addrs[s], "--health-interval", "100ms"}, peers...)...))
	}
	httpAddr := port()
	procs = append(procs, start(append([]string{"--target", "gateway", "--http-addr", httpAddr}, peers...)...))

	for _, s := range serviceTargets {
		waitServing(t, addrs[s])
	}
	waitHTTP(t, "http://"+httpAddr+"/readyz")

	store := auth.NewStore(redistest.Client(t))
	tenant := redistest.Tenant(t)
	if _, err := store.CreateTenant(context.Background(), tenant, "multi"); err != nil {
		t.Fatal(err)
	}
	key, err := store.CreateKey(context.Background(), tenant, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{rest: "http://" + httpAddr}
	if r := sys.do(t, http.MethodPost, "/v1/leads", key.Secret, []byte(`{"email":"multi@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("capture through the gateway process: %d %s", r.status, r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/leads", key.Secret, nil); r.status != http.StatusOK || len(r.json(t)["leads"].([]any)) != 1 {
		t.Fatalf("list through the gateway process: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/accounts/", "/v1/products/"} {
		r := sys.do(t, http.MethodGet, path+"01a20b45-2a28-7f41-b702-1121b1b3b663", key.Secret, nil)
		if r.status != http.StatusNotImplemented {
			t.Errorf("GET %s: %d %s, want 501 from the service process", path, r.status, r.body)
		}
	}

	if r := sys.do(t, http.MethodGet, "/v1/tickets/01a20b45-2a28-7f41-b702-1121b1b3b663", key.Secret, nil); r.status != http.StatusNotFound {
		t.Errorf("GET an unknown ticket: %d %s, want 404 from the support process", r.status, r.body)
	}

	// SIGTERM: every process drains and exits cleanly.
	for _, p := range procs {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("%v exited with %v after SIGTERM", p.Args[1:4], err)
		}
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
