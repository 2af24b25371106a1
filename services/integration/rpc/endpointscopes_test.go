package rpc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

// missingScope is the scope metadata of a MISSING_SCOPE refusal ("" for another error).
func missingScope(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "MISSING_SCOPE" && st.Code() == codes.PermissionDenied {
			return info.GetMetadata()["scope"]
		}
	}
	return ""
}

// TestEndpointFilterNeedsTheReadScopes: a key with integration.write may create or change an
// endpoint only for the events it may read; "*" or an empty filter needs every service's read
// scope. A refusal is PERMISSION_DENIED MISSING_SCOPE naming the missing scopes, and writes nothing.
func TestEndpointFilterNeedsTheReadScopes(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, adminCtx := s.client()
	_, salesKey := s.suite.NewKey(t, s.tenant, "integration.write", "integration.read", "sales.read")
	ctx := servicetest.WithKey(context.Background(), salesKey)
	create := func(types ...string) error {
		_, err := c.CreateWebhookEndpoint(ctx, &integrationv1.CreateWebhookEndpointRequest{
			WebhookEndpoint: &integrationv1.WebhookEndpoint{Url: "https://hooks.example.com/x", EventTypes: types}})
		return err
	}
	for _, tt := range []struct {
		types []string
		want  string
	}{
		{[]string{"*"}, "marketing.read product.read support.read"},
		{nil, "marketing.read product.read support.read"},
		{[]string{"sales.*", "marketing.lead.captured"}, "marketing.read"},
		{[]string{"support.ticket.*"}, "support.read"},
	} {
		if got := missingScope(create(tt.types...)); got != tt.want {
			t.Errorf("create %v with integration.write and sales.read: missing %q, want %q", tt.types, got, tt.want)
		}
	}
	if err := create("sales.*", "integration.api_key.*"); err != nil {
		t.Fatalf("an endpoint for the events the key may read: %v", err)
	}

	// Updates: widening the filter, and any change to an endpoint whose filter the key may not read
	// (its URL would redirect every event).
	mine, err := c.ListWebhookEndpoints(adminCtx, &integrationv1.ListWebhookEndpointsRequest{})
	if err != nil || len(mine.GetWebhookEndpoints()) != 1 {
		t.Fatalf("endpoints after the refused creates: %v, %v; want the one created", mine, err)
	}
	ep := mine.GetWebhookEndpoints()[0]
	everything := s.createEndpoint(t, "https://hooks.example.com/all", "*")
	for name, req := range map[string]*integrationv1.UpdateWebhookEndpointRequest{
		"widen the filter": {WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), EventTypes: []string{"*"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"event_types"}}},
		"redirect a \"*\" endpoint": {WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: everything.GetId(), Url: "https://attacker.example.com/"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"url"}}},
	} {
		_, err := c.UpdateWebhookEndpoint(ctx, req)
		if got := missingScope(err); got != "marketing.read product.read support.read" {
			t.Errorf("%s: %v, want MISSING_SCOPE naming marketing.read product.read support.read", name, err)
		}
	}
	for _, want := range []*integrationv1.WebhookEndpoint{ep, everything} {
		got, err := c.GetWebhookEndpoint(adminCtx, &integrationv1.GetWebhookEndpointRequest{Id: want.GetId()})
		if err != nil || got.GetWebhookEndpoint().GetEtag() != want.GetEtag() || got.GetWebhookEndpoint().GetUrl() != want.GetUrl() {
			t.Errorf("after refused updates: %v, %v; want it unchanged", got, err)
		}
	}
	if _, err := c.UpdateWebhookEndpoint(ctx, &integrationv1.UpdateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Description: "sales only"},
		UpdateMask:      &fieldmaskpb.FieldMask{Paths: []string{"description"}}}); err != nil {
		t.Errorf("an update within the key's scopes: %v", err)
	}

	// Over REST: 403 PERMISSION_DENIED naming the scopes, nothing written.
	edge := gatewaytest.Start(t, s.suite, gateway.Config{})
	r := edge.Do(t, http.MethodPost, "/v1/webhookEndpoints", salesKey, []byte(`{"url":"https://hooks.example.com/y","eventTypes":["*"]}`))
	if r.Status != http.StatusForbidden || r.ErrorStatus(t) != "PERMISSION_DENIED" || !strings.Contains(string(r.Body), "MISSING_SCOPE") ||
		!strings.Contains(string(r.Body), "marketing.read product.read support.read") {
		t.Errorf("POST \"*\" over REST: %d %s, want 403 MISSING_SCOPE naming the scopes", r.Status, r.Body)
	}
	r = edge.Do(t, http.MethodPatch, "/v1/webhookEndpoints/"+ep.GetId()+"?updateMask=eventTypes", salesKey, []byte(`{"eventTypes":["marketing.*"]}`))
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "marketing.read") {
		t.Errorf("PATCH to marketing.* over REST: %d %s, want 403 naming marketing.read", r.Status, r.Body)
	}
	if l := edge.OK(t, http.MethodGet, "/v1/webhookEndpoints", s.key, ""); len(l["webhookEndpoints"].([]any)) != 2 {
		t.Errorf("endpoints after refused REST calls: %v, want the two created", l)
	}
}
