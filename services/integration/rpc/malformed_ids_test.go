package rpc_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
)

// TestMalformedIdsAreBadRequests: an id that cannot be one (not a UUID) in the path of an
// integration route is 400 INVALID_ARGUMENT naming the field, as on the other services' routes,
// not 404: the caller's request is wrong, not the resource missing. Nothing is written.
func TestMalformedIdsAreBadRequests(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	edge := gatewaytest.Start(t, s.suite, gateway.Config{})
	const valid = "0192f3a0-0000-7000-8000-00000000c001"
	for _, tt := range []struct{ method, path, body, field string }{
		{http.MethodGet, "/v1/customers/not-a-customer/timeline", "", "customerId"},
		{http.MethodGet, "/v1/webhookEndpoints/x", "", "id"},
		{http.MethodPatch, "/v1/webhookEndpoints/x?updateMask=description", `{"description":"d"}`, "webhookEndpoint.id"},
		{http.MethodDelete, "/v1/webhookEndpoints/x", "", "id"},
		{http.MethodPost, "/v1/webhookEndpoints/x:rotateSecret", `{}`, "id"},
		{http.MethodPost, "/v1/webhookEndpoints/x:test", `{}`, "id"},
		{http.MethodGet, "/v1/webhookEndpoints/x/deliveries", "", "endpointId"},
		{http.MethodPost, "/v1/webhookEndpoints/x/deliveries/" + valid + ":retry", `{}`, "endpointId"},
		{http.MethodPost, "/v1/webhookEndpoints/" + valid + "/deliveries/x:retry", `{}`, "id"},
	} {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := edge.Do(t, tt.method, tt.path, s.key, body)
		if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "INVALID_ARGUMENT" || !slices.Equal(r.FieldViolations(t), []string{tt.field}) {
			t.Errorf("%s %s: %d %s, want 400 INVALID_ARGUMENT naming %s", tt.method, tt.path, r.Status, r.Body, tt.field)
		}
	}
}
