package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/importer"
)

// parseServe parses crm serve's flags as the command does (with a Redis URL, which it requires).
func parseServe(args ...string) (processConfig, error) {
	var cfg processConfig
	fs := flag.NewFlagSet("crm serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.registerFlags(fs, true)
	return cfg, cfg.parse(fs, append([]string{"--redis-url", "redis://127.0.0.1:1"}, args...))
}

// TestImportBatchesInFlight: --import-batches-in-flight (and CRM_IMPORT_BATCHES_IN_FLIGHT) reaches
// the services through platform.Deps, importer.DefaultInFlight by default; below 1 is refused.
func TestImportBatchesInFlight(t *testing.T) {
	inFlight := func(args ...string) int {
		t.Helper()
		cfg, err := parseServe(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		p := &process{cfg: cfg}
		return p.platformDeps().ImportBatchesInFlight
	}
	if got := inFlight(); got != importer.DefaultInFlight {
		t.Errorf("by default the services get %d batches in flight, want %d", got, importer.DefaultInFlight)
	}
	if got := inFlight("--import-batches-in-flight", "1"); got != 1 {
		t.Errorf("--import-batches-in-flight 1: the services get %d", got)
	}
	if _, err := parseServe("--import-batches-in-flight", "0"); err == nil || !strings.Contains(err.Error(), "--import-batches-in-flight") {
		t.Errorf("--import-batches-in-flight 0: %v, want a refusal that names the flag", err)
	}
	t.Setenv("CRM_IMPORT_BATCHES_IN_FLIGHT", "2")
	if got := inFlight(); got != 2 {
		t.Errorf("CRM_IMPORT_BATCHES_IN_FLIGHT=2: the services get %d", got)
	}
}
