package gateway_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// TestMethodsAndOptions checks a wrong method is 405 with the route's Allow (ErrorInfo reason
// METHOD_NOT_ALLOWED), OPTIONS answers 204 with it, an unknown custom method of a known resource
// is 404 METHOD_NOT_FOUND naming it and the resource's methods, an unknown operation 404
// OPERATION_NOT_FOUND, and an unknown path, under /v1/ or not, 404 PATH_NOT_FOUND naming it; none
// reaches the service.
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
		if tt.status == 405 && (r.ErrorStatus(t) != "UNIMPLEMENTED" || errorInfo(t, r)["reason"] != "METHOD_NOT_ALLOWED") {
			t.Errorf("%s %s: error %s, want UNIMPLEMENTED with the reason METHOD_NOT_ALLOWED", tt.method, tt.path, r.Body)
		}
	}
	lead := "/v1/leads/0192f3a0-0000-7000-8000-000000000001"
	for _, tt := range []struct{ method, path, reason, says string }{
		{http.MethodPost, lead + ":frobnicate", "METHOD_NOT_FOUND", "/v1/leads/{id} has no method :frobnicate; its methods: :convert, :disqualify, :qualify"},
		{http.MethodGet, lead + ":frobnicate", "METHOD_NOT_FOUND", "/v1/leads/{id} has no method :frobnicate"},
		{http.MethodPost, "/v1/leads:frobnicate", "METHOD_NOT_FOUND", "/v1/leads has no method :frobnicate; its methods: :batchCreate, :batchGet, :export, :import"},
		{http.MethodPost, "/v1/operations/marketing.0192f3a0-0000-7000-8000-000000000001:frobnicate", "METHOD_NOT_FOUND",
			"/v1/operations/{name} has no method :frobnicate; its methods: :cancel"},
		{http.MethodGet, "/v1/operations/bogus.0192f3a0-0000-7000-8000-000000000001", "OPERATION_NOT_FOUND", "no such operation"},
		{http.MethodGet, "/v1/nothing", "PATH_NOT_FOUND", "no route has the path /v1/nothing"},
		{http.MethodPost, "/v1/leads/0192f3a0-0000-7000-8000-000000000001/notes", "PATH_NOT_FOUND", "no route has the path /v1/leads/0192f3a0-0000-7000-8000-000000000001/notes"},
		{http.MethodGet, "/v2/leads", "PATH_NOT_FOUND", "no route has the path /v2/leads; the routes are listed in /openapi.json"},
	} {
		r := sys.Do(t, tt.method, tt.path, key, nil)
		if r.Status != http.StatusNotFound || r.ErrorStatus(t) != "NOT_FOUND" || errorInfo(t, r)["reason"] != tt.reason ||
			!strings.Contains(string(r.Body), tt.says) || r.Header.Get("Allow") != "" {
			t.Errorf("%s %s: %d %s, want 404 NOT_FOUND %s saying %q", tt.method, tt.path, r.Status, r.Body, tt.reason, tt.says)
		}
	}
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/v1/leads:import"},
		{http.MethodDelete, "/v1/operations/marketing.0192f3a0-0000-7000-8000-000000000001"},
	} {
		if r := sys.Do(t, tt.method, tt.path, key, nil); r.Status != http.StatusMethodNotAllowed || errorInfo(t, r)["reason"] != "METHOD_NOT_ALLOWED" {
			t.Errorf("%s %s: %d %s, want 405 METHOD_NOT_ALLOWED", tt.method, tt.path, r.Status, r.Body)
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
// answers over gRPC (the request's own etag may say the same). A list of etags is narrowed to the
// current one by a read (412 when none is).
// Another ABORTED (a concurrent update) under If-Match stays 409; a current If-Match goes through.
func TestIfMatchMismatchIsOneAnswer(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := "/v1/leads/0192f3a0-0000-7000-8000-000000000001"
	stale := http.Header{"If-Match": {`"6"`}}
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPatch, lead + "?updateMask=company", `{"company":"Stale Co"}`},
		{http.MethodPatch, lead, `{"company":"Stale Co","etag":"6"}`}, // the same etag in both
		{http.MethodDelete, lead, ""},
		{http.MethodDelete, lead + "?etag=6", ""},
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
	if r := sys.DoWith(t, http.MethodPost, lead+":qualify", key, nil, http.Header{"If-Match": {`"5", "6"`}}); r.Status != http.StatusPreconditionFailed ||
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
	// If-Match compares strongly (RFC 9110): a weak tag never matches, not even the current etag.
	if r := sys.DoWith(t, http.MethodPost, lead+":qualify", key, nil, http.Header{"If-Match": {`W/"7"`}}); r.Status != http.StatusPreconditionFailed ||
		errorInfo(t, r)["reason"] != "ETAG_MISMATCH" || sys.marketing.calledTimes("QualifyLead") != 2 {
		t.Errorf("a qualify with the current etag, weak: %d %s, want 412 ETAG_MISMATCH before the service", r.Status, r.Body)
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

// TestIfMatchOnlyWhereTheRouteTakesIt: If-Match applies where the route's request carries an etag
// for the service to check it against, which is where its OpenAPI operation declares the header.
// Elsewhere (a create, :convert, a GET, an import) it is 400 INVALID_ARGUMENT naming the header,
// before any service sees the request, rather than a change done unconditionally; where declared it
// is never refused so. The routes that take it are computed here from the protos, apart from the
// document the gateway reads them from.
func TestIfMatchOnlyWhereTheRouteTakesIt(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	doc := loadDocument(t, sys)
	protos := protoRoutes(t)
	const id = "0192f3a0-0000-7000-8000-000000000001"
	var took, refused []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			route := method + " " + blankVars(path)
			declared := slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "If-Match" })
			if m, ok := protos[route]; ok && declared != takesIfMatch(protos, route, m) {
				t.Errorf("%s: If-Match declared %v, but the protos say it takes it: %v", route, declared, !declared)
			}
			r := sys.DoWith(t, method, pathVar.ReplaceAllString(path, id), key, nil, http.Header{"If-Match": {`"999"`}})
			v := r.Violations(t)
			refusedIfMatch := r.Status == http.StatusBadRequest && len(v) == 1 && v[0][0] == "If-Match"
			switch {
			case declared && refusedIfMatch:
				t.Errorf("%s takes If-Match, but refused it: %s", route, r.Body)
			case !declared && (!refusedIfMatch || !strings.Contains(v[0][1], "does not take a conditional request") ||
				r.ErrorStatus(t) != "INVALID_ARGUMENT" || errorInfo(t, r)["reason"] != "INVALID_ARGUMENT"):
				t.Errorf("%s does not take If-Match: %d %s, want 400 INVALID_ARGUMENT naming If-Match", route, r.Status, r.Body)
			case declared:
				took = append(took, route)
			default:
				refused = append(refused, route)
			}
		}
	}
	if len(took) == 0 || len(refused) == 0 {
		t.Fatalf("%d routes took If-Match and %d refused it: the document has both kinds", len(took), len(refused))
	}
	for _, method := range []string{"CaptureLead", "ListLeads"} { // the fake's routes that do not take it
		if n := sys.marketing.calledTimes(method); n != 0 {
			t.Errorf("%s reached the service %d times with a refused If-Match", method, n)
		}
	}
	if r := sys.DoWith(t, http.MethodPatch, "/v1/leads/"+id+"?updateMask=company", key, []byte(`{"company":"Acme"}`),
		http.Header{"If-Match": {`"999"`}}); r.Status != http.StatusPreconditionFailed {
		t.Errorf("PATCH with a stale If-Match: %d %s, want 412", r.Status, r.Body)
	}

	// The audit's cases: If-Match on :convert and on a create changes nothing; without it they go through.
	ifMatch := http.Header{"If-Match": {`"999"`}}
	convert := "/v1/leads/" + id + ":convert"
	if r := sys.DoWith(t, http.MethodPost, convert, key, []byte(`{}`), ifMatch); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "POST /v1/leads/{leadId}:convert does not take a conditional request") {
		t.Errorf(":convert with If-Match: %d %s, want 400 naming the route", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodPost, convert, key, []byte(`{}`)); r.Status != http.StatusNotImplemented {
		t.Errorf(":convert without If-Match: %d %s, want the fake's 501 (it reached the service)", r.Status, r.Body)
	}
	capture := []byte(`{"email":"conditional@example.com"}`)
	if r := sys.DoWith(t, http.MethodPost, "/v1/leads", key, capture, ifMatch); r.Status != http.StatusBadRequest ||
		sys.marketing.captured("conditional@example.com") != 0 {
		t.Errorf("a capture with If-Match: %d %s, want 400 and no capture", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/leads", key, capture); r.Status != http.StatusOK || sys.marketing.captured("conditional@example.com") != 1 {
		t.Errorf("a capture without If-Match: %d %s, want 200 and one capture", r.Status, r.Body)
	}
}

// takesIfMatch: the route changes a resource whose GET returns its etag (the resource's path is
// the route's less a custom verb), and the request carries that etag, top-level or in the resource
// its HTTP body is.
func takesIfMatch(protos map[string]protoreflect.MethodDescriptor, route string, m protoreflect.MethodDescriptor) bool {
	method, path, _ := strings.Cut(route, " ")
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "}") {
		path = path[:i]
	}
	get, ok := protos["GET "+path]
	if method == http.MethodGet || !ok || !hasEtag(get.Output()) {
		return false
	}
	rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
	body := m.Input().Fields().ByName(protoreflect.Name(rule.GetBody()))
	return m.Input().Fields().ByName("etag") != nil || (body != nil && body.Message() != nil && body.Message().Fields().ByName("etag") != nil)
}

// hasEtag: a response is a resource with an etag, or holds exactly one.
func hasEtag(out protoreflect.MessageDescriptor) bool {
	if out.Fields().ByName("etag") != nil {
		return true
	}
	n := 0
	for i := range out.Fields().Len() {
		f := out.Fields().Get(i)
		if f.Message() != nil && !f.IsList() && !f.IsMap() && f.Message().Fields().ByName("etag") != nil {
			n++
		}
	}
	return n == 1
}

// TestIfMatchAndTheRequestsEtagMustAgree: a request that carries its etag (?etag= of a DELETE, the
// body's etag) and If-Match says which version it is based on twice; when they differ it is 400
// INVALID_ARGUMENT naming If-Match, and the service never sees it. When If-Match names the
// request's etag (alone or in a list), that etag is what the service checks.
func TestIfMatchAndTheRequestsEtagMustAgree(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := "/v1/leads/0192f3a0-0000-7000-8000-000000000001"
	for _, tt := range []struct{ method, path, body, ifMatch, where string }{
		{http.MethodDelete, lead + "?etag=99", "", `"1"`, "the query (?etag=)"},
		{http.MethodDelete, lead + "?etag=7", "", `"1", "2"`, "the query (?etag=)"},
		{http.MethodPatch, lead + "?updateMask=company", `{"company":"Acme","etag":"7"}`, `"6"`, "the body"},
		{http.MethodPost, lead + ":qualify", `{"etag":"7"}`, `"1"`, "the body"},
		{http.MethodDelete, lead, "", `""`, "an ETag"}, // no etag at all is not a change made unconditionally
	} {
		r := sys.DoWith(t, tt.method, tt.path, key, []byte(tt.body), http.Header{"If-Match": {tt.ifMatch}})
		if v := r.Violations(t); r.Status != http.StatusBadRequest || len(v) != 1 || v[0][0] != "If-Match" || !strings.Contains(v[0][1], tt.where) {
			t.Errorf("%s %s with If-Match %s: %d %s, want 400 naming If-Match and %s", tt.method, tt.path, tt.ifMatch, r.Status, r.Body, tt.where)
		}
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("conflicting etags reached the service: %v", calls)
	}
	for _, tt := range []struct {
		path, ifMatch string
		status        int
	}{
		{lead + "?etag=7", `"7"`, http.StatusOK},
		{lead + "?etag=99", `"1", "99"`, http.StatusPreconditionFailed}, // 99 is the etag checked: stale
		{lead + "?etag=7", `*`, http.StatusOK},
	} {
		if r := sys.DoWith(t, http.MethodDelete, tt.path, key, nil, http.Header{"If-Match": {tt.ifMatch}}); r.Status != tt.status {
			t.Errorf("DELETE %s with If-Match %s: %d %s, want %d", tt.path, tt.ifMatch, r.Status, r.Body, tt.status)
		}
	}
	if n := sys.marketing.calledTimes("DeleteLead"); n != 3 {
		t.Errorf("the agreeing deletes reached the service %d times, want 3", n)
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
