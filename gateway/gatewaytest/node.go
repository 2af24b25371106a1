package gatewaytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NodeTool is the path of an npm tool pinned in tools/package-lock.json (tools/node_modules/.bin/
// name). Without Node.js or `make npm`, the test is skipped with what to do, except under CI=true,
// where .ci/run installs both and a missing tool fails.
func NodeTool(t testing.TB, name string) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI installs Node.js and runs npm ci in tools/)", why)
		}
		t.Skipf("skipped: %s; install Node.js and run `make npm` to run it", why)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("Node.js is not installed")
	}
	tool := filepath.Join(ToolsDir(t), "node_modules", ".bin", name)
	if _, err := os.Stat(tool); err != nil {
		missing(name + " is not in tools/node_modules")
	}
	return tool
}

// ToolsDir is the repository's tools/ folder: the Go tools pinned in tools/go.mod and the npm
// tools in tools/node_modules.
func ToolsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "package.json")); err == nil {
			return filepath.Join(dir, "tools")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no tools/package.json above the test's directory")
		}
		dir = parent
	}
}
