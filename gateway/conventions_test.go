package gateway_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestRequestID checks X-Request-Id: a valid one is echoed, a missing or malformed one is replaced
// by a new UUIDv7, on every route; an error body names it in a RequestInfo detail, the service
// receives it as x-request-id metadata and the gateway's span carries it.
func TestRequestID(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	with := func(id string) http.Header {
		if id == "" {
			return nil
		}
		return http.Header{"X-Request-Id": {id}}
	}
	for _, tt := range []struct {
		name, sent, path string
		echoed           bool
	}{
		{"given", "client-req-42", "/v1/leads", true},
		{"absent", "", "/v1/leads", false},
		{"too long", strings.Repeat("x", 129), "/v1/leads", false},
		{"with a space", "two words", "/v1/leads", false},
		{"on a public route", "probe-1", "/healthz", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := sys.DoWith(t, http.MethodGet, tt.path, key, nil, with(tt.sent)).Header.Get("X-Request-Id")
			if tt.echoed && got != tt.sent {
				t.Fatalf("X-Request-Id %q, want %q echoed", got, tt.sent)
			}
			if !tt.echoed {
				if id, err := uuid.Parse(got); err != nil || id.Version() != 7 {
					t.Fatalf("X-Request-Id %q, want a new UUIDv7", got)
				}
			}
		})
	}

	bad := sys.DoWith(t, http.MethodGet, "/v1/leads?pageSize=-1", key, nil, with("err-req-7"))
	if !strings.Contains(string(bad.Body), `"@type":"type.googleapis.com/google.rpc.RequestInfo","requestId":"err-req-7"`) {
		t.Errorf("error body without the request id: %s", bad.Body)
	}

	captured := sys.DoWith(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"rid@example.com"}`), with("capture-req-9"))
	for _, resp := range []http.Header{captured.Header, bad.Header} {
		for name := range resp {
			if strings.HasPrefix(name, "Grpc-Metadata-") || strings.HasPrefix(name, "Grpc-Trailer-") {
				t.Errorf("response leaks gRPC metadata as %s: %v", name, resp[name])
			}
		}
	}
	if got := sys.marketing.requestIDs("rid@example.com"); len(got) != 1 || got[0] != "capture-req-9" {
		t.Errorf("the service received request ids %v, want [capture-req-9]", got)
	}
	waitForSpan(t, sys.Suite, func(s sdktrace.ReadOnlySpan) bool {
		for _, a := range s.Attributes() {
			if string(a.Key) == "http.request.header.x-request-id" && a.Value.AsString() == "capture-req-9" {
				return s.Name() == "POST /v1/leads"
			}
		}
		return false
	})
}

// waitForSpan waits (bounded) for an ended span that matches.
func waitForSpan(t *testing.T, suite *servicetest.Suite, match func(sdktrace.ReadOnlySpan) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range suite.Spans.Ended() {
			if match(s) {
				return
			}
		}
	}
	t.Fatal("no such span ended")
}

// TestMethodsAndOptions checks a wrong method is 405 with the route's Allow, OPTIONS answers 204
// with it, and an unknown path stays 404; none reaches the service.
func TestMethodsAndOptions(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodDelete, "/v1/leads", 405, "GET, OPTIONS, POST"},
		{http.MethodPut, "/v1/leads/0192f3a0-0000-7000-8000-000000000001", 405, "DELETE, GET, OPTIONS, PATCH"},
		{http.MethodGet, "/v1/leads/0192f3a0-0000-7000-8000-000000000001:qualify", 405, "OPTIONS, POST"},
		{http.MethodOptions, "/v1/leads", 204, "GET, OPTIONS, POST"},
		{http.MethodGet, "/v1/nothing", 404, ""},
	} {
		r := sys.Do(t, tt.method, tt.path, key, nil)
		if r.Status != tt.status || r.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q: %s", tt.method, tt.path, r.Status, r.Header.Get("Allow"), tt.status, tt.allow, r.Body)
		}
		if tt.status == 405 && r.ErrorStatus(t) != "UNIMPLEMENTED" {
			t.Errorf("%s %s: error %s, want an AIP-193 body", tt.method, tt.path, r.Body)
		}
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("refused methods reached the service: %v", calls)
	}
}

// TestCORS checks --cors-origins: a preflight from an allowed origin is answered with the methods
// and headers the API uses, a response exposes ETag and X-Request-Id, and another origin gets no
// CORS headers; without the flag there are none at all.
func TestCORS(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{CORSOrigins: "https://app.example,https://admin.example"})
	_, key := sys.NewKey(t, "", "marketing.read")
	preflight := func(edge *gatewaytest.Edge, origin string) gatewaytest.Response {
		return edge.DoWith(t, http.MethodOptions, "/v1/leads", "", nil, http.Header{"Origin": {origin},
			"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,idempotency-key,if-match"}})
	}
	ok := preflight(sys.Edge, "https://admin.example")
	if ok.Status != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" ||
		!regexp.MustCompile(`(?i)if-match`).MatchString(ok.Header.Get("Access-Control-Allow-Headers")) {
		t.Errorf("preflight from an allowed origin: %d %v", ok.Status, ok.Header)
	}
	if other := preflight(sys.Edge, "https://evil.example"); other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", other.Header)
	}
	get := sys.DoWith(t, http.MethodGet, "/v1/leads", key, nil, http.Header{"Origin": {"https://app.example"}})
	if get.Status != 200 || get.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(get.Header.Get("Access-Control-Expose-Headers"), "Etag") {
		t.Errorf("GET from an allowed origin: %d %v", get.Status, get.Header)
	}
	plain := startSystem(t, servicetest.Options{}, gateway.Config{})
	if r := preflight(plain.Edge, "https://app.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without --cors-origins: %v", r.Header)
	}
}

// TestIfMatchMismatchIsOneAnswer: If-Match goes into the request's etag (the body of a PATCH or a
// custom method, ?etag= of a DELETE), so the service checks it in its write, and a stale one is 412
// with status ABORTED and the ErrorInfo reason ETAG_MISMATCH of the service's domain, as the service
// answers over gRPC. A list of etags is narrowed to the current one by a read (412 when none is).
// Another ABORTED (a concurrent update) under If-Match stays 409; a current If-Match goes through.
func TestIfMatchMismatchIsOneAnswer(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := "/v1/leads/0192f3a0-0000-7000-8000-000000000001"
	stale := http.Header{"If-Match": {`"6"`}}
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPatch, lead + "?updateMask=company", `{"company":"Stale Co"}`},
		{http.MethodPatch, lead, `{"company":"Stale Co","etag":"7"}`}, // If-Match wins over the body's etag
		{http.MethodDelete, lead, ""},
		{http.MethodPost, lead + ":qualify", `{}`},
		{http.MethodPost, lead + ":qualify", ""}, // no body: the etag makes one
	} {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := sys.DoWith(t, tt.method, tt.path, key, body, stale)
		info := errorInfo(t, r)
		if r.Status != http.StatusPreconditionFailed || r.ErrorStatus(t) != "ABORTED" ||
			info["reason"] != "ETAG_MISMATCH" || info["domain"] != "marketing.crm" {
			t.Errorf("%s %s with a stale If-Match: %d %s, want 412 ABORTED ETAG_MISMATCH of marketing.crm", tt.method, tt.path, r.Status, r.Body)
		}
	}
	if n := sys.marketing.calledTimes("QualifyLead"); n != 2 {
		t.Errorf("the qualifies with a stale If-Match reached the service %d times, want 2 (it checks the etag)", n)
	}
	if r := sys.DoWith(t, http.MethodPost, lead+":qualify", key, nil, http.Header{"If-Match": {`"5", W/"6"`}}); r.Status != http.StatusPreconditionFailed ||
		errorInfo(t, r)["reason"] != "ETAG_MISMATCH" || sys.marketing.calledTimes("QualifyLead") != 2 {
		t.Errorf("a qualify with a list of stale etags: %d %s, want 412 ETAG_MISMATCH before the service", r.Status, r.Body)
	}
	long := http.Header{"If-Match": {`"` + strings.Repeat("7", 40) + `"`}} // longer than any etag field takes
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
		path, body := lead+":qualify", []byte(`{}`)
		switch method {
		case http.MethodDelete:
			path, body = lead, nil
		case http.MethodPatch:
			path, body = lead+"?updateMask=company", []byte(`{"company":"Long Co"}`)
		}
		if r := sys.DoWith(t, method, path, key, body, long); r.Status != http.StatusPreconditionFailed || errorInfo(t, r)["reason"] != "ETAG_MISMATCH" {
			t.Errorf("%s %s with a 40-character If-Match: %d %s, want 412 ETAG_MISMATCH", method, path, r.Status, r.Body)
		}
	}
	if r := sys.DoWith(t, http.MethodPost, lead+":qualify", key, nil, http.Header{"If-Match": {`"5", "7"`}}); r.Status != http.StatusOK {
		t.Errorf("a qualify with a list holding the current etag: %d %s, want 200", r.Status, r.Body)
	}

	// Over gRPC, the service's own answer to a stale etag: the same code and reason.
	_, err := marketingv1.NewMarketingServiceClient(sys.Suite.Conn).UpdateLead(servicetest.WithKey(t.Context(), key),
		&marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: "0192f3a0-0000-7000-8000-000000000001", Etag: "6", Company: "Stale Co"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"company"}}})
	if st := status.Convert(err); st.Code() != codes.Aborted || grpcReason(st) != "ETAG_MISMATCH" {
		t.Errorf("UpdateLead over gRPC with a stale etag: %v, want ABORTED ETAG_MISMATCH", err)
	}

	current := http.Header{"If-Match": {`"7"`}}
	if r := sys.DoWith(t, http.MethodPatch, lead+"?updateMask=company", key, []byte(`{"company":"contended"}`), current); r.Status != http.StatusConflict || errorInfo(t, r)["reason"] != "CONCURRENT_UPDATE" {
		t.Errorf("a concurrent update under a current If-Match: %d %s, want 409 CONCURRENT_UPDATE", r.Status, r.Body)
	}
	if r := sys.DoWith(t, http.MethodPost, lead+":qualify", key, []byte(`{}`), current); r.Status != http.StatusOK || sys.marketing.calledTimes("QualifyLead") != 4 {
		t.Errorf("qualify with the current If-Match: %d %s", r.Status, r.Body)
	}
}

// errorInfo is the ErrorInfo detail of an AIP-193 error body (nil when none).
func errorInfo(t *testing.T, r gatewaytest.Response) map[string]any {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		if dm, _ := d.(map[string]any); dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			return dm
		}
	}
	return nil
}

func grpcReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
