package integration_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/crmcycle/crm/services/integration"
)

// TestEventTypesListsEveryDeclaredType: an endpoint filter is checked against EventTypes, so a
// type a producer declares but the list misses could never be subscribed to.
func TestEventTypesListsEveryDeclaredType(t *testing.T) {
	files, err := filepath.Glob("../../proto/crm/*/v1/events.go")
	if err != nil || len(files) < 5 {
		t.Fatalf("events.go files: %v, %v", files, err)
	}
	name := regexp.MustCompile(`eventv1\.Type\[[^\]]+\]\{Name: "([^"]+)"\}`)
	var declared []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllSubmatch(src, -1) {
			declared = append(declared, string(m[1]))
		}
	}
	got := slices.Sorted(slices.Values(integration.EventTypes))
	slices.Sort(declared)
	if !slices.Equal(got, declared) {
		t.Errorf("EventTypes %v\nthe producers declare %v", got, declared)
	}
}
