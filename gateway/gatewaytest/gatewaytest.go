// Package gatewaytest puts the real REST gateway in front of a servicetest suite, on a loopback
// port, so a test drives the services as an external client does: HTTP/JSON through grpc-gateway,
// the error renderer and otelhttp, then gRPC through the real interceptors.
//
//	suite := servicetest.Start(t, ...)
//	edge := gatewaytest.Start(t, suite, gateway.Config{})
//	lead := edge.OK(t, "POST", "/v1/leads", key, `{"email":"ada@example.com"}`)
package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// MaxBodyBytes is the gateway's body limit unless the test's config says otherwise.
const MaxBodyBytes = 64 << 10

// Edge is the running gateway.
type Edge struct {
	// URL is the gateway's base URL, e.g. http://127.0.0.1:41234.
	URL   string
	Suite *servicetest.Suite
	// Client sends the requests; http.DefaultClient when nil (set one that trusts the test's CA
	// for an https URL).
	Client *http.Client
}

// Start serves the gateway over the suite's server (every backend is the suite's connection)
// until the test ends.
func Start(t testing.TB, suite *servicetest.Suite, cfg gateway.Config) *Edge {
	t.Helper()
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = MaxBodyBytes
	}
	conn, err := suite.Deps.Dial("gateway")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := func(ctx context.Context) error { return suite.Redis.Ping(ctx).Err() }
	h, err := gateway.New(ctx, cfg, gateway.Backends{Marketing: conn, Sales: conn, Product: conn, Support: conn, Integration: conn}, suite.Telemetry, ready)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	t.Cleanup(func() {
		shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		if err := hs.Shutdown(shutdownCtx); err != nil {
			_ = hs.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gateway stopped with %v", err)
		}
		cancel()
	})
	return &Edge{URL: "http://" + lis.Addr().String(), Suite: suite}
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.Status, err, r.Body)
	}
	return m
}

// ErrorStatus is the AIP-193 status of an error body ("" when there is none).
func (r Response) ErrorStatus(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

// Do sends a request with key as the bearer credential (none when empty) and body as JSON (none
// when nil).
func (e *Edge) Do(t testing.TB, method, path, key string, body []byte) Response {
	t.Helper()
	return e.DoWith(t, method, path, key, body, nil)
}

// OKBytes sends a bodiless request (with the extra headers, if any), which must answer 200, and
// returns the raw answer (an operation, an NDJSON or CSV export).
func (e *Edge) OKBytes(t testing.TB, method, path, key string, header http.Header) []byte {
	t.Helper()
	r := e.DoWith(t, method, path, key, nil, header)
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r.Body
}

// DoWith is Do with extra request headers.
func (e *Edge) DoWith(t testing.TB, method, path, key string, body []byte, header http.Header) Response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := e.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// OK sends a request that must answer 200 and returns its JSON body.
func (e *Edge) OK(t testing.TB, method, path, key, body string) map[string]any {
	t.Helper()
	r := e.Do(t, method, path, key, bodyBytes(body))
	if r.Status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
	}
	return r.JSON(t)
}

// Fails sends a request that must fail with the HTTP status and AIP-193 status, and returns the
// error's details.
func (e *Edge) Fails(t testing.TB, method, path, key, body string, code int, status string) []any {
	t.Helper()
	r := e.Do(t, method, path, key, bodyBytes(body))
	if r.Status != code || r.ErrorStatus(t) != status {
		t.Fatalf("%s %s %s: %d %s, want %d %s", method, path, body, r.Status, r.Body, code, status)
	}
	errBody, _ := r.JSON(t)["error"].(map[string]any)
	details, _ := errBody["details"].([]any)
	return details
}

// ErrorMetadata returns the ErrorInfo metadata among an error's details.
func ErrorMetadata(details []any) map[string]any {
	for _, d := range details {
		dm, _ := d.(map[string]any)
		if dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			m, _ := dm["metadata"].(map[string]any)
			return m
		}
	}
	return nil
}

func bodyBytes(body string) []byte {
	if body == "" {
		return nil
	}
	return []byte(body)
}

// FieldViolations returns the fields named by the BadRequest detail of an AIP-193 error body.
func (r Response) FieldViolations(t testing.TB) []string {
	t.Helper()
	var fields []string
	for _, v := range r.Violations(t) {
		fields = append(fields, v[0])
	}
	return fields
}

// Violations returns the field violations of an AIP-193 error body, each as [field, description].
func (r Response) Violations(t testing.TB) [][2]string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	details, _ := e["details"].([]any)
	var out [][2]string
	for _, d := range details {
		dm, _ := d.(map[string]any)
		if dm["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		violations, _ := dm["fieldViolations"].([]any)
		for _, v := range violations {
			vm, _ := v.(map[string]any)
			field, _ := vm["field"].(string)
			desc, _ := vm["description"].(string)
			out = append(out, [2]string{field, desc})
		}
	}
	return out
}

// NewKey creates a tenant (or uses tenant when given) and an API key with scopes in the suite's
// store; it returns the tenant and the key's secret.
func (e *Edge) NewKey(t testing.TB, tenant string, scopes ...string) (string, string) {
	t.Helper()
	return e.Suite.NewKey(t, tenant, scopes...)
}
