package rpc_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// The steps every generated client's flow reports, in order.
var clientSteps = []string{
	"ok capture and idempotent retry",
	"ok get with ETag",
	"ok filtered list, two pages",
	"ok patch with updateMask and If-Match, 412 when stale",
	"ok typed 400 and 404",
	"ok 429 with Retry-After",
}

// clientTarget starts what a generated client's flow runs against: marketing behind the real
// gateway, and a second one whose rate limit is tiny, for the 429. It writes the served
// /openapi.json into dir and returns the flow's arguments.
func clientTarget(t *testing.T, dir string) []string {
	t.Helper()
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	limited := startSystem(t, func(o *servicetest.Options) { o.RateLimit = &ratelimit.Config{PerSecond: 1, Burst: 2} })
	_, limitedKey := limited.NewKey(t, "", "marketing.read")
	doc := sys.Do(t, http.MethodGet, "/openapi.json", "", nil)
	if err := os.WriteFile(filepath.Join(dir, "openapi.json"), doc.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{sys.URL, key, limited.URL, limitedKey}
}

// copyDir copies the files of a testdata folder into dir.
func copyDir(t *testing.T, from, dir string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func runStep(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func checkSteps(t *testing.T, out string) {
	t.Helper()
	for _, step := range clientSteps {
		if !strings.Contains(out, step) {
			t.Fatalf("the flow did not report %q:\n%s", step, out)
		}
	}
}

// TestGeneratedGoClient generates a Go client from the served document with oapi-codegen (pinned
// in tools/go.mod) and runs testdata/goclient's flow with it: capture, idempotent retry, get with
// ETag, a filtered list over two pages, PATCH with updateMask and If-Match (412 when stale), typed
// 400 and 404, and a 429.
func TestGeneratedGoClient(t *testing.T) {
	dir := t.TempDir()
	args := clientTarget(t, dir)
	copyDir(t, "testdata/goclient", dir)
	noWork := []string{"GOWORK=off", "GOFLAGS=-mod=mod"}
	runStep(t, gatewaytest.ToolsDir(t), noWork, "go", "run", "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen",
		"-generate", "types,client", "-package", "main", "-o", filepath.Join(dir, "client.gen.go"), filepath.Join(dir, "openapi.json"))
	out := runStep(t, dir, noWork, "go", "run", ".", "-url", args[0], "-key", args[1], "-limited-url", args[2], "-limited-key", args[3])
	checkSteps(t, out)
}

// TestGeneratedTypeScriptClient does the same flow in TypeScript: openapi-typescript writes the
// types from the served document, tsc checks testdata/tsclient/flow.ts against them, and node runs
// it with openapi-fetch.
func TestGeneratedTypeScriptClient(t *testing.T) {
	openapiTS := gatewaytest.NodeTool(t, "openapi-typescript")
	tsc := gatewaytest.NodeTool(t, "tsc")
	dir := t.TempDir()
	args := clientTarget(t, dir)
	copyDir(t, "testdata/tsclient", dir)
	if err := os.Symlink(filepath.Join(gatewaytest.ToolsDir(t), "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	runStep(t, dir, nil, openapiTS, "openapi.json", "-o", "schema.d.ts")
	runStep(t, dir, nil, tsc, "-p", ".")
	checkSteps(t, runStep(t, dir, nil, "node", append([]string{"out/flow.js"}, args...)...))
}
