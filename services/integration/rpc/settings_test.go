package rpc_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// TestIntegrationSettingsOverREST: GET and PATCH /v1/integrationSettings through the gateway:
// defaults, validation with field detail, etags (two updates at one etag: one wins), admin scope,
// and tenants apart; a refused request changes nothing.
func TestIntegrationSettingsOverREST(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	edge := gatewaytest.Start(t, s.suite, gateway.Config{})
	_, reader := s.suite.NewKey(t, s.tenant, "integration.read", "integration.write")
	foreign, foreignKey := s.suite.NewKey(t, "", "admin")
	_ = foreign
	get := func(key string) map[string]any {
		t.Helper()
		return edge.OK(t, http.MethodGet, "/v1/integrationSettings", key, "")
	}
	if st := get(s.key); st["auditRetentionDays"] != float64(400) || st["etag"] != "0" || st["updateTime"] != nil {
		t.Fatalf("default settings: %v", st)
	}

	refused := []struct {
		name, path, key, body string
		code                  int
		status, field         string
	}{
		{"without a key", "/v1/integrationSettings", "", `{"auditRetentionDays":30}`, 401, "UNAUTHENTICATED", ""},
		{"without admin", "/v1/integrationSettings", reader, `{"auditRetentionDays":30}`, 403, "PERMISSION_DENIED", ""},
		{"over ten years", "/v1/integrationSettings", s.key, `{"auditRetentionDays":3651}`, 400, "INVALID_ARGUMENT", "settings.auditRetentionDays"},
		{"negative", "/v1/integrationSettings", s.key, `{"auditRetentionDays":-1}`, 400, "INVALID_ARGUMENT", "settings.auditRetentionDays"},
		// 0 is not "the default": refused, with or without the mask (it was a silent reset to 400).
		{"zero", "/v1/integrationSettings", s.key, `{"auditRetentionDays":0}`, 400, "INVALID_ARGUMENT", "settings.auditRetentionDays"},
		{"zero in the mask", "/v1/integrationSettings?updateMask=auditRetentionDays", s.key, `{"auditRetentionDays":0}`, 400, "INVALID_ARGUMENT", "settings.auditRetentionDays"},
		{"not a number", "/v1/integrationSettings", s.key, `{"auditRetentionDays":"soon"}`, 400, "INVALID_ARGUMENT", ""},
		{"a mask outside the settings", "/v1/integrationSettings?updateMask=etag", s.key, `{"auditRetentionDays":30}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"a stale etag", "/v1/integrationSettings", s.key, `{"auditRetentionDays":30,"etag":"7"}`, 409, "ABORTED", ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			r := edge.Do(t, http.MethodPatch, c.path, c.key, []byte(c.body))
			if r.Status != c.code || r.ErrorStatus(t) != c.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, c.code, c.status)
			}
			if c.field != "" && !slices.Contains(r.FieldViolations(t), c.field) {
				t.Errorf("field violations %v, want %s", r.FieldViolations(t), c.field)
			}
			if st := get(s.key); st["auditRetentionDays"] != float64(400) || st["etag"] != "0" {
				t.Errorf("a refused update changed the settings: %v", st)
			}
		})
	}
	if r := edge.Do(t, http.MethodGet, "/v1/integrationSettings", reader, nil); r.Status != 403 {
		t.Errorf("reading the settings without admin: %d %s, want 403", r.Status, r.Body)
	}

	st := edge.OK(t, http.MethodPatch, "/v1/integrationSettings?updateMask=auditRetentionDays", s.key, `{"auditRetentionDays":30,"etag":"0"}`)
	if st["auditRetentionDays"] != float64(30) || st["etag"] != "1" || st["updateTime"] == nil {
		t.Fatalf("updated settings: %v", st)
	}
	if got := get(s.key); got["auditRetentionDays"] != float64(30) || got["etag"] != "1" {
		t.Fatalf("settings read after the update: %v", got)
	}
	// A 0 leaves a set retention as it is too, over REST and over gRPC without a mask.
	if r := edge.Do(t, http.MethodPatch, "/v1/integrationSettings", s.key, []byte(`{"auditRetentionDays":0}`)); r.Status != 400 {
		t.Fatalf("PATCH 0 over 30: %d %s, want 400", r.Status, r.Body)
	}
	c, ctx := s.client()
	if _, err := c.UpdateIntegrationSettings(ctx, &integrationv1.UpdateIntegrationSettingsRequest{
		Settings: &integrationv1.IntegrationSettings{AuditRetentionDays: proto.Int32(0)}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC update to 0: %v, want InvalidArgument", err)
	}
	if got := get(s.key); got["auditRetentionDays"] != float64(30) || got["etag"] != "1" {
		t.Fatalf("settings after refused zeros: %v", got)
	}
	// Without updateMask, an empty body has nothing to change: the settings as they are.
	if got := edge.OK(t, http.MethodPatch, "/v1/integrationSettings", s.key, `{}`); got["auditRetentionDays"] != float64(30) || got["etag"] != "1" {
		t.Fatalf("PATCH {}: %v, want the settings unchanged at etag 1", got)
	}
	// Another tenant still has the defaults, and its change leaves this tenant's alone.
	if got := get(foreignKey); got["auditRetentionDays"] != float64(400) || got["etag"] != "0" {
		t.Fatalf("another tenant's settings: %v", got)
	}
	edge.OK(t, http.MethodPatch, "/v1/integrationSettings", foreignKey, `{"auditRetentionDays":90}`)
	if got := get(s.key); got["auditRetentionDays"] != float64(30) {
		t.Fatalf("another tenant's update changed this tenant's settings: %v", got)
	}

	// Two updates at the same etag at once: exactly one applies, the other is ABORTED.
	var wg sync.WaitGroup
	answers := make([]int, 2)
	for i, days := range []string{"60", "61"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = edge.Do(t, http.MethodPatch, "/v1/integrationSettings", s.key, []byte(`{"auditRetentionDays":`+days+`,"etag":"1"}`)).Status
		}()
	}
	wg.Wait()
	slices.Sort(answers)
	if !slices.Equal(answers, []int{200, 409}) {
		t.Fatalf("two updates at one etag answered %v, want one 200 and one 409", answers)
	}
	if got := get(s.key); got["etag"] != "2" || (got["auditRetentionDays"] != float64(60) && got["auditRetentionDays"] != float64(61)) {
		t.Fatalf("settings after the race: %v", got)
	}
	// Named in the mask and left out of the body, it goes back to the default.
	if got := edge.OK(t, http.MethodPatch, "/v1/integrationSettings?updateMask=auditRetentionDays", s.key, `{}`); got["auditRetentionDays"] != float64(400) || got["etag"] != "3" {
		t.Fatalf("back to the default: %v", got)
	}
}

// TestWebhookEndpointCreateOverREST: "enabled": false is honoured at creation (absent means
// enabled), and an event type that names nothing is refused with its index and the valid types;
// a refused create writes nothing.
func TestWebhookEndpointCreateOverREST(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	edge := gatewaytest.Start(t, s.suite, gateway.Config{})
	stopped := edge.OK(t, http.MethodPost, "/v1/webhookEndpoints", s.key, `{"url":"https://hooks.example.com/a","enabled":false}`)
	if stopped["enabled"] != false {
		t.Errorf("created with enabled false: %v", stopped)
	}
	if read := edge.OK(t, http.MethodGet, "/v1/webhookEndpoints/"+stopped["id"].(string), s.key, ""); read["enabled"] != false {
		t.Errorf("read back: %v, want enabled false", read)
	}
	if on := edge.OK(t, http.MethodPost, "/v1/webhookEndpoints", s.key, `{"url":"https://hooks.example.com/b","eventTypes":["*","sales.*","sales.order.*","sales.order.placed"]}`); on["enabled"] != true {
		t.Errorf("created without enabled: %v, want enabled", on)
	}
	for _, c := range []struct{ body, field string }{
		{`{"url":"https://hooks.example.com/c","eventTypes":["sales.*","bogus.event"]}`, "webhookEndpoint.eventTypes[1]"},
		{`{"url":"https://hooks.example.com/c","eventTypes":["bogus.*"]}`, "webhookEndpoint.eventTypes[0]"},
		{`{"url":"https://hooks.example.com/c","eventTypes":["sales.order"]}`, "webhookEndpoint.eventTypes[0]"},
	} {
		r := edge.Do(t, http.MethodPost, "/v1/webhookEndpoints", s.key, []byte(c.body))
		if r.Status != 400 || r.ErrorStatus(t) != "INVALID_ARGUMENT" || !slices.Contains(r.FieldViolations(t), c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, r.Status, r.Body, c.field)
		}
		if !strings.Contains(string(r.Body), "sales.order.placed") {
			t.Errorf("%s: %s, want the valid event types listed", c.body, r.Body)
		}
	}
	if l := edge.OK(t, http.MethodGet, "/v1/webhookEndpoints", s.key, ""); len(l["webhookEndpoints"].([]any)) != 2 {
		t.Errorf("endpoints after refused creates: %v, want the two created", l)
	}
}
