package client

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestRetriesOnlyReads checks the retry policy names exactly the methods served with HTTP GET.
func TestRetriesOnlyReads(t *testing.T) {
	service := marketingv1.File_crm_marketing_v1_marketing_service_proto.Services().Get(0)
	config, err := serviceConfig(service, 4)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		MethodConfig []struct {
			Name        []struct{ Method string }
			RetryPolicy struct {
				MaxAttempts          int
				RetryableStatusCodes []string
			}
		}
	}
	if err := json.Unmarshal([]byte(config), &c); err != nil || len(c.MethodConfig) != 1 {
		t.Fatalf("service config %s: %v", config, err)
	}
	var methods []string
	for _, n := range c.MethodConfig[0].Name {
		methods = append(methods, n.Method)
	}
	for _, read := range []string{"GetLead", "ListLeads", "GetCampaign"} {
		if !slices.Contains(methods, read) {
			t.Errorf("%s is not retried: %v", read, methods)
		}
	}
	for _, write := range []string{"CaptureLead", "UpdateLead", "QualifyLead", "DeleteLead"} {
		if slices.Contains(methods, write) {
			t.Errorf("the write %s is retried", write)
		}
	}
	if p := c.MethodConfig[0].RetryPolicy; p.MaxAttempts != 4 || !slices.Equal(p.RetryableStatusCodes, []string{"UNAVAILABLE"}) {
		t.Errorf("retry policy %+v", p)
	}
	if off, _ := serviceConfig(service, 1); off != "{}" {
		t.Errorf("one attempt: %s, want no retry policy", off)
	}
}

// TestEveryServiceHasAConstructor: each service of the API has its constructor here, which dials
// it with the retry policy built from that service's own reads.
func TestEveryServiceHasAConstructor(t *testing.T) {
	for name, dial := range map[string]func() (func() error, error){
		"marketing":   func() (func() error, error) { _, c, err := Marketing("127.0.0.1:1", "k"); return c, err },
		"sales":       func() (func() error, error) { _, c, err := Sales("127.0.0.1:1", "k"); return c, err },
		"product":     func() (func() error, error) { _, c, err := Product("127.0.0.1:1", "k"); return c, err },
		"support":     func() (func() error, error) { _, c, err := Support("127.0.0.1:1", "k"); return c, err },
		"integration": func() (func() error, error) { _, c, err := Integration("127.0.0.1:1", "k"); return c, err },
	} {
		closeConn, err := dial()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := closeConn(); err != nil {
			t.Errorf("%s: close: %v", name, err)
		}
	}
	config, err := serviceConfig(integrationv1.File_crm_integration_v1_integration_service_proto.Services().Get(0), 4)
	if err != nil || !strings.Contains(config, `"ListAuditEntries"`) || strings.Contains(config, `"CreateWebhookEndpoint"`) {
		t.Errorf("integration's retry policy %s (%v): want its reads and not its writes", config, err)
	}
}
