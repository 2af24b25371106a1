package rpc_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestBadInputIsRejectedAndWritesNothing covers marketing's own refusals (its validation rules,
// page tokens, filters and ids) over REST and gRPC; what the gateway refuses before any service
// sees it is tested in the gateway module.
func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")

	rest := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantField  string
	}{
		{"invalid e-mail", "POST", "/v1/leads", `{"email":"not-an-email"}`, 400, "lead.email"},
		{"e-mail with a display name", "POST", "/v1/leads", `{"email":"Ada <ada@example.com>"}`, 400, "lead.email"},
		{"missing e-mail", "POST", "/v1/leads", `{"givenName":"Ada"}`, 400, "lead.email"},
		{"oversize field", "POST", "/v1/leads", `{"email":"a@example.com","givenName":"` + strings.Repeat("x", 101) + `"}`, 400, "lead.givenName"},
		{"out-of-range enum number", "POST", "/v1/leads", `{"email":"a@example.com","channel":99}`, 400, "lead.channel"},
		{"bad campaign id", "POST", "/v1/leads", `{"email":"a@example.com","campaignId":"../../etc"}`, 400, "lead.campaignId"},
		{"too many tags", "POST", "/v1/leads", `{"email":"a@example.com","tags":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`, 400, "lead.tags"},
		{"forged page token", "GET", "/v1/leads?pageToken=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", 400, "pageToken"},
		{"negative page size", "GET", "/v1/leads?pageSize=-1", "", 400, "pageSize"},
		{"unsupported filter", "GET", "/v1/leads?filter=" + "channel%20%3D%20CHANNEL_WEB%20AND%20score%20%3E%2010", "", 400, "filter"},
		{"id that is not a UUID", "GET", "/v1/leads/42", "", 400, "id"},
	}
	for _, tt := range rest {
		t.Run("REST/"+tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, key, body)
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if got := r.ErrorStatus(t); got != "INVALID_ARGUMENT" {
				t.Errorf("error.status = %q, want INVALID_ARGUMENT", got)
			}
			if fields := r.FieldViolations(t); !slices.Contains(fields, tt.wantField) {
				t.Errorf("field violations %v do not name %q: %s", fields, tt.wantField, r.Body)
			}
		})
	}

	client, ctx := sys.marketing(key)
	grpcCases := []struct {
		name      string
		req       *marketingv1.CaptureLeadRequest
		wantField string
	}{
		{"no lead", &marketingv1.CaptureLeadRequest{}, "lead"},
		{"invalid e-mail", &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "nope"}}, "lead.email"},
		{"oversize company", &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "a@example.com", Company: strings.Repeat("c", 201)}}, "lead.company"},
		{"undefined enum", &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "a@example.com", Channel: 42}}, "lead.channel"},
	}
	for _, tt := range grpcCases {
		t.Run("gRPC/"+tt.name, func(t *testing.T) {
			_, err := client.CaptureLead(ctx, tt.req)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code %v, want InvalidArgument: %v", status.Code(err), err)
			}
			var fields []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if !slices.Contains(fields, tt.wantField) {
				t.Fatalf("field violations %v do not name %q", fields, tt.wantField)
			}
		})
	}

	if keys, events := sys.footprint(t, tenant); keys != 0 || events != 0 {
		t.Fatalf("rejected requests left %d keys and %d events", keys, events)
	}
}
