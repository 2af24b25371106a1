package gateway_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// TestDocsInChromium opens /docs in headless Chromium (Debian's, driven by playwright-core) as a
// reader would: the operations are grouped by service, the search box narrows the groups, an
// operation shows its example and its request schema with limits and enum values, and Authorize
// offers a key field for "Try it out".
func TestDocsInChromium(t *testing.T) {
	gatewaytest.NodeTool(t, "tsc") // Node.js and the npm tools
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (.ci/run installs it)")
		}
		t.Skip("skipped: Debian's chromium is not installed (apt-get install chromium)")
	}
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	dir := t.TempDir()
	script, err := os.ReadFile("testdata/docs.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docs.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(gatewaytest.ToolsDir(t), "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "node", "docs.mjs", browser, sys.URL)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("docs.mjs: %v\n%s\n%s", err, out, stderr)
	}
	var seen struct {
		Tags, Filtered, KeyField []string
		Example, Schema          string
	}
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("docs.mjs printed %s: %v", out, err)
	}
	var want []string
	for _, tag := range loadDocument(t, sys).Tags {
		want = append(want, tag.Name)
	}
	if !slices.Equal(seen.Tags, want) || !slices.Contains(want, "MarketingService") {
		t.Errorf("groups %v, want one per service %v", seen.Tags, want)
	}
	if !slices.Equal(seen.Filtered, []string{"SupportService"}) {
		t.Errorf("search for Support shows %v, want [SupportService]", seen.Filtered)
	}
	if !strings.Contains(seen.Example, "ada@example.com") {
		t.Errorf("the capture's example is not shown: %.300s", seen.Example)
	}
	for _, want := range []string{"email", "maxLength", "254", "CHANNEL_EMAIL", "CHANNEL_WEB"} {
		if !strings.Contains(seen.Schema, want) {
			t.Errorf("the capture's schema lacks %q: %.500s", want, seen.Schema)
		}
	}
	if len(seen.KeyField) == 0 {
		t.Error("Authorize offers no key field")
	}
}
