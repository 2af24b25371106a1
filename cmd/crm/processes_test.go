package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redistest"
)

// builtBinary is the crm binary, built once per test run for the tests that start processes.
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "crm-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "crm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", &buildError{err: err, out: string(out)}
	}
	return bin, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// processSuite is the suite run the way Kubernetes runs it: one `crm serve --target=X` process per
// service and one for the gateway, wired by address flags, on the test package's redis-server. Each
// process exports its spans as JSON lines on its stdout (OTEL_TRACES_EXPORTER=console), so a test
// can assert traces that cross processes and the bus.
type processSuite struct {
	t     *testing.T
	rest  string
	addrs map[string]string
	procs map[string]*exec.Cmd
	spans map[string]string // target -> file its spans go to
}

func startProcessSuite(t *testing.T) *processSuite {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Ports below Linux's ephemeral range (32768 and up), so no outgoing connection of another test
	// can take one between picking it and the process binding it.
	taken := map[int]bool{}
	port := func() string {
		for range 1000 {
			p := 20000 + rand.IntN(12000)
			if taken[p] {
				continue
			}
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				_ = l.Close()
				taken[p] = true
				return "127.0.0.1:" + strconv.Itoa(p)
			}
		}
		t.Fatal("no free port below the ephemeral range")
		return ""
	}
	s := &processSuite{t: t, addrs: map[string]string{}, procs: map[string]*exec.Cmd{}, spans: map[string]string{}}
	var peers []string // every process knows where every service is, as in compose and Kubernetes
	for _, name := range serviceTargets {
		s.addrs[name] = port()
		peers = append(peers, "--"+name+"-addr", s.addrs[name])
	}
	start := func(target string, args ...string) {
		spans := filepath.Join(t.TempDir(), target+".spans")
		out, err := os.Create(spans)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{"serve", "--target", target, "--redis-url", redistest.URL(),
			"--admin-addr", "127.0.0.1:0", "--event-claim-idle", "1s"}, append(args, peers...)...)...)
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=console", "OTEL_SERVICE_NAME=crm-"+target,
			"OTEL_TRACES_SAMPLER=always_on", "OTEL_BSP_SCHEDULE_DELAY=100")
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = out.Close() })
		s.procs[target], s.spans[target] = cmd, spans
	}
	for _, name := range serviceTargets {
		start(name, "--grpc-addr", s.addrs[name], "--health-interval", "100ms")
	}
	httpAddr := port()
	start(gatewayTarget, "--http-addr", httpAddr)
	for _, name := range serviceTargets {
		waitServing(t, s.addrs[name])
	}
	waitHTTP(t, "http://"+httpAddr+"/readyz")
	s.rest = "http://" + httpAddr
	return s
}

// system is the suite's REST edge, for the request helpers of system_test.go.
func (s *processSuite) system() *system { return &system{rest: s.rest, rdb: redistest.Client(s.t)} }

// newKey creates a tenant and an admin key for it.
func (s *processSuite) newKey() (tenant, secret string) {
	s.t.Helper()
	store := auth.NewStore(redistest.Client(s.t))
	tenant = redistest.Tenant(s.t)
	if _, err := store.CreateTenant(context.Background(), tenant, "processes"); err != nil {
		s.t.Fatal(err)
	}
	key, err := store.CreateKey(context.Background(), tenant, []string{"admin"})
	if err != nil {
		s.t.Fatal(err)
	}
	return tenant, key.Secret
}

// stop sends SIGTERM to a process and waits for it; the error is its exit status.
func (s *processSuite) stop(target string) error {
	p := s.procs[target]
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.Wait()
}

// exportedSpan is the part of stdouttrace's JSON the tests read.
type exportedSpan struct {
	Name        string
	SpanContext spanRef
	Parent      spanRef
	SpanKind    int
	Links       []struct{ SpanContext spanRef }
	Service     string `json:"-"`
}

type spanRef struct {
	TraceID string
	SpanID  string
}

// exportedSpans reads the spans of the stopped processes (a process exports its last spans when it
// stops).
func (s *processSuite) exportedSpans() []exportedSpan {
	s.t.Helper()
	var out []exportedSpan
	for target, file := range s.spans {
		f, err := os.Open(file)
		if err != nil {
			s.t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var sp exportedSpan
			if err := json.Unmarshal(sc.Bytes(), &sp); err != nil {
				continue // not a span line
			}
			sp.Service = target
			out = append(out, sp)
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			s.t.Fatal(err)
		}
	}
	return out
}
