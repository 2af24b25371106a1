package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

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
	tls   *tls.Config // nil: plaintext
	addrs map[string]string
	procs map[string]*exec.Cmd
	spans map[string]string // target -> file its spans go to
	args  map[string][]string
	bin   string
	peers []string
}

func startProcessSuite(t *testing.T) *processSuite { return startProcessSuiteWith(t, nil) }

// startProcessSuiteWith runs the suite with more flags for every process; clientTLS is how the
// test's clients reach a suite serving TLS (nil for plaintext).
func startProcessSuiteWith(t *testing.T, clientTLS *tls.Config, flags ...string) *processSuite {
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
	s := &processSuite{t: t, tls: clientTLS, addrs: map[string]string{}, procs: map[string]*exec.Cmd{}, spans: map[string]string{},
		args: map[string][]string{}}
	peers := flags // every process knows where every service is, as in compose and Kubernetes
	for _, name := range serviceTargets {
		s.addrs[name] = port()
		peers = append(peers, "--"+name+"-addr", s.addrs[name])
	}
	s.bin, s.peers = bin, peers
	for _, name := range serviceTargets {
		s.start(name, "--grpc-addr", s.addrs[name], "--health-interval", "100ms")
	}
	httpAddr := port()
	s.start(gatewayTarget, "--http-addr", httpAddr)
	creds, scheme, client := s.creds(), "http", http.DefaultClient
	if clientTLS != nil {
		scheme = "https"
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	}
	for _, name := range serviceTargets {
		waitServing(t, s.addrs[name], creds)
	}
	s.rest = scheme + "://" + httpAddr
	waitHTTP(t, client, s.rest+"/readyz")
	return s
}

// start runs `crm serve --target target` with args and every process's flags.
func (s *processSuite) start(target string, args ...string) {
	t := s.t
	spans := filepath.Join(t.TempDir(), target+".spans")
	out, err := os.Create(spans)
	if err != nil {
		t.Fatal(err)
	}
	s.args[target] = args
	cmd := exec.Command(s.bin, append([]string{"serve", "--target", target, "--redis-url", redistest.URL(),
		"--admin-addr", "127.0.0.1:0", "--event-claim-idle", "1s", "--event-lease-ttl", "2s"}, append(args, s.peers...)...)...)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=console", "OTEL_SERVICE_NAME=crm-"+target,
		"OTEL_TRACES_SAMPLER=always_on", "OTEL_BSP_SCHEDULE_DELAY=100")
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = out.Close() })
	s.procs[target], s.spans[target] = cmd, spans
}

// kill ends a process with SIGKILL, as a crash or an OOM kill would: no drain, no flush.
func (s *processSuite) kill(target string) {
	p := s.procs[target]
	_ = p.Process.Kill()
	_ = p.Wait()
}

// restart starts a killed service process again with its flags and waits until it serves.
func (s *processSuite) restart(target string) {
	s.start(target, s.args[target]...)
	waitServing(s.t, s.addrs[target], s.creds())
}

func (s *processSuite) creds() credentials.TransportCredentials {
	if s.tls != nil {
		return credentials.NewTLS(s.tls)
	}
	return insecure.NewCredentials()
}

// system is the suite's REST edge, for the request helpers of system_test.go.
func (s *processSuite) system() *system {
	sys := &system{rest: s.rest, rdb: redistest.Client(s.t)}
	if s.tls != nil {
		sys.client = &http.Client{Transport: &http.Transport{TLSClientConfig: s.tls}}
	}
	return sys
}

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

// recorder is a module table whose modules record what happens to them.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) record(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// module returns a module that records its init, the end of its run and its close; runErr, when
// set, is what its run returns at once.
func (r *recorder) module(name string, deps []string, runErr error) module {
	return module{deps: deps, init: func(context.Context) (service, error) {
		r.record("init " + name)
		return service{
			run: func(ctx context.Context) error {
				if runErr != nil {
					r.record("failed " + name)
					return runErr
				}
				<-ctx.Done()
				r.record("stopped " + name)
				return nil
			},
			close: func() error { r.record("closed " + name); return nil },
		}, nil
	}}
}

// chain is the table redis <- bus <- server, each depending on the one before.
func (r *recorder) chain(serverErr error) map[string]module {
	return map[string]module{
		"redis":  r.module("redis", nil, nil),
		"bus":    r.module("bus", []string{"redis"}, nil),
		"server": r.module("server", []string{"bus"}, serverErr),
	}
}

// runUntilReady runs the modules and stops them as soon as they all run.
func runUntilReady(t *testing.T, table map[string]module, targets ...string) error {
	t.Helper()
	order, err := resolve(table, targets)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := runModules(ctx, mods, cancel)
	return errors.Join(runErr, closeModules(mods))
}

func TestModulesStopInReverseOrder(t *testing.T) {
	var r recorder
	if err := runUntilReady(t, r.chain(nil), "server"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"init redis", "init bus", "init server",
		"stopped server", "stopped bus", "stopped redis",
		"closed server", "closed bus", "closed redis",
	}
	if diff := cmp.Diff(want, r.got()); diff != "" {
		t.Errorf("lifecycle (-want +got):\n%s", diff)
	}
}

func TestAFailingModuleStopsTheOthers(t *testing.T) {
	var r recorder
	boom := errors.New("boom")
	// ready cancels nothing here: the failure alone must bring the process down.
	table := r.chain(boom)
	order, err := resolve(table, []string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err != nil {
		t.Fatal(err)
	}
	err = runModules(context.Background(), mods, func() {})
	if !errors.Is(err, boom) || err.Error() != "server: boom" {
		t.Errorf("got %v, want server: boom", err)
	}
	got := r.got()[3:] // after the inits
	if diff := cmp.Diff([]string{"failed server", "stopped bus", "stopped redis"}, got); diff != "" {
		t.Errorf("stops after a failure (-want +got):\n%s", diff)
	}
}

func TestAFailedInitReturnsWhatWasBuilt(t *testing.T) {
	var r recorder
	table := r.chain(nil)
	table["server"] = module{deps: []string{"bus"}, init: func(context.Context) (service, error) {
		return service{}, errors.New("address in use")
	}}
	order, err := resolve(table, []string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err == nil || err.Error() != "init server: address in use" {
		t.Errorf("got %v, want init server: address in use", err)
	}
	if err := closeModules(mods); err != nil {
		t.Fatal(err)
	}
	want := []string{"init redis", "init bus", "closed bus", "closed redis"}
	if diff := cmp.Diff(want, r.got()); diff != "" {
		t.Errorf("a failed start (-want +got):\n%s", diff)
	}
}

func TestResolve(t *testing.T) {
	var r recorder
	table := map[string]module{
		"redis":   r.module("redis", nil, nil),
		"server":  r.module("server", []string{"redis"}, nil),
		"gateway": {deps: []string{"redis"}, after: []string{"server"}},
		"loop":    {deps: []string{"loop2"}},
		"loop2":   {deps: []string{"loop"}},
	}
	for _, tc := range []struct {
		targets []string
		want    []string
		wantErr string
	}{
		{targets: []string{"server"}, want: []string{"redis", "server"}},
		// after orders without selecting.
		{targets: []string{"gateway"}, want: []string{"redis", "gateway"}},
		{targets: []string{"gateway", "server"}, want: []string{"redis", "server", "gateway"}},
		{targets: []string{"server", "server"}, want: []string{"redis", "server"}},
		{targets: []string{"server", "ingester"}, wantErr: `unknown module "ingester"`},
		{targets: []string{"loop"}, wantErr: `module "loop" depends on itself`},
	} {
		got, err := resolve(table, tc.targets)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("resolve(%v): got %v, want error %q", tc.targets, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%v): %v", tc.targets, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolve(%v) (-want +got):\n%s", tc.targets, diff)
		}
	}
}

// TestProcessModuleOrder checks the real table: what each target pulls in, and that the order puts
// the shutdown sequence right (gateway, gRPC server, bus, admin, Redis, in reverse).
func TestProcessModuleOrder(t *testing.T) {
	table := (&process{}).modules()
	for _, tc := range []struct {
		targets []string
		want    []string
	}{
		{[]string{gatewayTarget}, []string{"redis", "admin", "gateway"}},
		{[]string{"marketing"}, []string{"redis", "admin", "bus", "grpc-server", "marketing"}},
		{[]string{"sales", gatewayTarget}, []string{"redis", "admin", "bus", "grpc-server", "sales", "gateway"}},
		{append([]string{gatewayTarget}, serviceTargets...),
			[]string{"redis", "admin", "bus", "grpc-server", "marketing", "sales", "product", "support", "integration", "gateway"}},
	} {
		got, err := resolve(table, tc.targets)
		if err != nil {
			t.Errorf("resolve(%v): %v", tc.targets, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolve(%v) (-want +got):\n%s", tc.targets, diff)
		}
	}
	if _, err := resolve(table, []string{"all"}); err == nil {
		t.Error(`resolve(all): no error; "all" is expanded by the flag, never a module`)
	}
}

// TestServeRefusesAnEvictingRedis: `crm serve` does not start on a Redis that may evict keys.
func TestServeRefusesAnEvictingRedis(t *testing.T) {
	evicting := redistest.NewServer(t, "--maxmemory-policy", "allkeys-lru")
	var out syncWriter
	err := run(context.Background(), []string{"serve", "--target", "marketing", "--redis-url", evicting.URL,
		"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, &out)
	if err == nil || !strings.Contains(err.Error(), "maxmemory-policy") {
		t.Fatalf("serve on an evicting Redis: %v, want a refusal naming maxmemory-policy", err)
	}
}

// TestDevRegistersThePublishedKeyOnlyWhenTold: `crm dev` on a real Redis registers the published
// development key (CRM_DEV_API_KEY) only with --dev-key; without it, a random key, named for
// crm dev and expiring in 7 days.
func TestDevRegistersThePublishedKeyOnlyWhenTold(t *testing.T) {
	store := auth.NewStore(redistest.Client(t))
	for _, tt := range []struct {
		flags      []string
		registered bool
	}{{nil, false}, {[]string{"--dev-key"}, true}} {
		secret := "crm_published_" + redistest.Tenant(t)
		t.Setenv("CRM_DEV_API_KEY", secret)
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncWriter{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, append([]string{"dev", "--redis-url", redistest.URL(), "--grpc-addr", "127.0.0.1:0",
				"--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tt.flags...), out)
		}()
		waitFor(t, "crm dev to start", out.String, func(s string) bool { return strings.Contains(s, "CRM Cycle is up") })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("crm dev %v: %v", tt.flags, err)
		}
		_, err := store.Lookup(context.Background(), secret)
		if registered := err == nil; registered != tt.registered {
			t.Errorf("crm dev %v on a real Redis: published key registered %v, want %v (%s)", tt.flags, registered, tt.registered, out.String())
		}
		if tt.registered {
			continue
		}
		// The random key is a named one that expires: many runs leave no admin keys that work for ever.
		_, printed, _ := strings.Cut(out.String(), "API key (admin scope): ")
		printed, _, _ = strings.Cut(printed, "\n")
		p, err := store.Lookup(context.Background(), printed)
		if err != nil || p.NotAfter.IsZero() || time.Until(p.NotAfter) > 7*24*time.Hour {
			t.Fatalf("the random key %q: %+v %v, want one that expires within 7 days", printed, p, err)
		}
		info, err := store.Key(context.Background(), p.TenantID, p.KeyID)
		if err != nil || !strings.HasPrefix(info.DisplayName, "crm dev ") {
			t.Errorf("the random key's record = %+v %v, want it named for crm dev", info, err)
		}
	}
}

// syncWriter collects a command's output while the test reads it.
type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// crm collects at GOGC 400 unless the environment sets GOGC, which wins.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		env  string
		want int
	}{{"", gcPercent}, {"50", 100}} {
		debug.SetGCPercent(100)
		tuneGC(func(name string) string {
			if name == "GOGC" {
				return tt.env
			}
			return ""
		})
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("GOGC=%q: GC percent %d, want %d", tt.env, got, tt.want)
		}
	}
}

// TestDevWithoutIntegrationServesTheGateway: `crm dev --target=marketing,sales,product,support`
// (how the benchmark measures a write without the integration service) serves the REST gateway:
// a lead is captured through it, the integration routes answer 503 UNAVAILABLE with Retry-After
// and the reason SERVICE_NOT_RUNNING and write nothing. `crm dev --target=marketing` has no
// gateway and says so instead of printing an empty REST address.
func TestDevWithoutIntegrationServesTheGateway(t *testing.T) {
	// A server of its own: crm dev's consumers would otherwise start on the backlog the other
	// tests of the package left on the shared one.
	srv := redistest.NewServer(t)
	rdb := srv.Client(t)
	start := func(target string) (string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncWriter{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"dev", "--target", target, "--redis-url", srv.URL, "--grpc-addr", "127.0.0.1:0",
				"--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, out)
		}()
		waitFor(t, "crm dev --target="+target+" to start", out.String, func(s string) bool { return strings.Contains(s, "CRM Cycle is up") })
		return out.String(), func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("crm dev --target=%s: %v", target, err)
			}
		}
	}

	out, stop := start("marketing,sales,product,support")
	defer stop()
	rest := regexp.MustCompile(`REST (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(out)
	key := regexp.MustCompile(`API key \(admin scope\): (\S+)`).FindStringSubmatch(out)
	if rest == nil || key == nil || !strings.Contains(out, "without the integration service") {
		t.Fatalf("crm dev printed no REST address, key or note on integration:\n%s", out)
	}
	call := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, rest[1]+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key[1])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	email := "nointegration-" + redistest.Tenant(t) + "@example.com"
	if res, body := call(http.MethodPost, "/v1/leads", `{"email":"`+email+`","channel":"CHANNEL_WEB"}`); res.StatusCode != http.StatusOK {
		t.Fatalf("capture through the gateway: %d %s", res.StatusCode, body)
	}
	// What the refused calls would write: an endpoint (integration's keys of the tenant), a key.
	state := func() string {
		ctx := context.Background()
		ikeys, err := rdb.Keys(ctx, "crm:*:integration:"+devTenant+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		keys, _, err := auth.NewStore(rdb).ListKeys(ctx, devTenant, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d integration keys, %d API keys", len(ikeys), len(keys))
	}
	before := state()
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/auditLog", ""},
		{http.MethodPost, "/v1/webhookEndpoints", `{"url":"http://127.0.0.1:1/hook"}`},
		{http.MethodPost, "/v1/apiKeys", `{"displayName":"x","scopes":["sales.read"]}`},
	} {
		res, body := call(r.method, r.path, r.body)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, `"UNAVAILABLE"`) || !strings.Contains(body, "SERVICE_NOT_RUNNING") {
			t.Errorf("%s %s without integration: %d Retry-After %q %s, want 503 UNAVAILABLE SERVICE_NOT_RUNNING with Retry-After",
				r.method, r.path, res.StatusCode, res.Header.Get("Retry-After"), body)
		}
	}
	if after := state(); after != before {
		t.Errorf("the refused integration calls changed the tenant: %s before, %s after", before, after)
	}

	out, stopAlone := start("marketing")
	stopAlone()
	if !strings.Contains(out, "REST none") || strings.Contains(out, "try:") {
		t.Errorf("crm dev --target=marketing (no gateway) printed:\n%s", out)
	}
}
