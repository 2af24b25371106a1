package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// testMaxBody is the gateway's body limit in these tests.
const testMaxBody = 64 << 10

// TestBadBodiesAreRejectedBeforeTheService covers what the gateway itself refuses: bodies it
// cannot decode strictly and bodies over its limit are a 4xx that names the field in the REST
// JSON's terms (the path the client wrote, relative to the route's body) and says plainly what is
// wrong, with no decoder wording; none reaches the service.
func TestBadBodiesAreRejectedBeforeTheService(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write", "sales.write")

	tests := []struct {
		name, path, body string
		wantStatus       int
		field, desc      string
	}{
		{"unknown enum", "/v1/leads", `{"email":"a@b.co","channel":"FAX"}`, 400,
			"channel", `"FAX" is not a valid channel; use one of CHANNEL_EMAIL, CHANNEL_SOCIAL, CHANNEL_ADS, CHANNEL_CONTENT, CHANNEL_REFERRAL, CHANNEL_EVENT, CHANNEL_WEB`},
		{"enum of the wrong JSON type", "/v1/leads", `{"email":"a@b.co","channel":true}`, 400,
			"channel", "must be one of CHANNEL_EMAIL, CHANNEL_SOCIAL, CHANNEL_ADS, CHANNEL_CONTENT, CHANNEL_REFERRAL, CHANNEL_EVENT, CHANNEL_WEB, not true or false"},
		{"string given a number", "/v1/leads", `{"email":5}`, 400, "email", "must be a string, not a number"},
		{"proto name given a number", "/v1/leads", `{"email":"a@b.co","given_name":5}`, 400, "givenName", "must be a string, not a number"},
		{"list given a string", "/v1/leads", `{"email":"a@b.co","tags":"vip"}`, 400, "tags", "must be an array, not a string"},
		{"list element of the wrong type", "/v1/leads", `{"email":"a@b.co","tags":["vip",7]}`, 400, "tags[1]", "must be a string, not a number"},
		{"nested field", "/v1/orders", `{"customerId":"c","currencyCode":"EUR","lines":[{"productId":"p","quantity":1},{"productId":"p","quantity":"many"}]}`, 400,
			"lines[1].quantity", "must be a whole number"},
		{"number out of range", "/v1/orders", `{"customerId":"c","lines":[{"productId":"p","quantity":1e30}]}`, 400,
			"lines[0].quantity", "must be a whole number from -9223372036854775808 to 9223372036854775807"},
		{"after a true boolean, an element's bad enum", "/v1/leads",
			`{"email":"a@b.co","consent":[{"channel":"CHANNEL_EMAIL","granted":true},{"channel":"CHANNEL_BOGUS","granted":true}]}`, 400,
			"consent[1].channel", `"CHANNEL_BOGUS" is not a valid channel`},
		{"boolean given a string", "/v1/leads", `{"email":"a@b.co","consent":[{"channel":"CHANNEL_EMAIL","granted":"yes"}]}`, 400,
			"consent[0].granted", "must be true or false"},
		{"unknown field", "/v1/leads", `{"email":"a@example.com","tenantId":"other"}`, 400, "tenantId", "unknown field"},
		{"unknown nested field", "/v1/orders", `{"customerId":"c","lines":[{"productId":"p","price":3}]}`, 400,
			"lines[0].price", "unknown field; this object takes productId, quantity, sku, displayName, unitPrice"},
		{"field given twice", "/v1/leads", `{"email":"a@example.com","email":"b@example.com"}`, 400, "email", "given twice"},
		{"not an object", "/v1/leads", `["a@example.com"]`, 400, "body", "must be a JSON object, not an array"},
		{"malformed JSON", "/v1/leads", `{"email":`, 400, "body", "malformed JSON: it ends early, at line 1, column 10"},
		{"malformed JSON inside", "/v1/leads", "{\n  \"email\": \"a@example.com\",\n  \"company\" \"Acme\"\n}", 400,
			"body", `malformed JSON at line 3, column 13: unexpected '"'`},
		{"body over the limit", "/v1/leads", `{"email":"a@example.com","company":"` + strings.Repeat("x", testMaxBody) + `"}`, 413,
			"body", "request body is larger than the limit"},
		{"trailing data", "/v1/leads", `{"email":"a@example.com"} {"email":"b@example.com"}`, 400,
			"body", "more data after the JSON value, at line 1, column 27: send one JSON object"},
		{"trailing garbage", "/v1/leads", `{"email":"a@example.com"}x`, 400, "body", "more data after the JSON value, at line 1, column 26"},
		{"invalid UTF-8", "/v1/leads", "{\"email\":\"a@example.com\",\"company\":\"\xff\xfe\"}", 400, "body", "not valid UTF-8 at line 1, column 37"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sys.Do(t, "POST", tt.path, key, []byte(tt.body))
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if got := r.ErrorStatus(t); got != "INVALID_ARGUMENT" {
				t.Errorf("error.status = %q, want INVALID_ARGUMENT", got)
			}
			violations := r.Violations(t)
			if len(violations) != 1 || violations[0][0] != tt.field || !strings.HasPrefix(violations[0][1], tt.desc) {
				t.Errorf("field violations %q, want [[%s %s...]]", violations, tt.field, tt.desc)
			}
			for _, leak := range []string{"proto", "(line", "invalid character", "json:", "unexpected EOF", "syntax"} {
				if strings.Contains(string(r.Body), leak) {
					t.Errorf("the answer has decoder wording %q: %s", leak, r.Body)
				}
			}
		})
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("rejected requests reached the service: %v", calls)
	}
	// What decodes still does, in either field name form and with enum numbers as protojson takes them.
	for _, body := range []string{`{"email":"ok1@example.com","channel":"CHANNEL_WEB","given_name":"Ada"}`,
		`{"email":"ok2@example.com","channel":2,"tags":null}`} {
		if r := sys.Do(t, "POST", "/v1/leads", key, []byte(body)); r.Status != 200 {
			t.Errorf("POST %s: %d %s", body, r.Status, r.Body)
		}
	}
}

// TestStrictDecodingNamesTheField covers strict decoding outside the body's syntax: a NUL in a
// value, unknown query parameters and malformed path or query values are 400 naming the field, in
// the request's JSON names, and never reach the service.
func TestStrictDecodingNamesTheField(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	for _, tt := range []struct {
		name, method, path, body, field string
	}{
		{"NUL in a value", "POST", "/v1/leads", `{"email":"a@example.com","givenName":"Ada\u0000"}`, "givenName"},
		{"NUL in a nested value", "POST", "/v1/leads", `{"email":"a@example.com","tags":["ok","x\u0000"]}`, "tags[1]"},
		{"unknown query parameter", "GET", "/v1/leads?pageSize=2&colour=red", "", "colour"},
		{"query parameter of another route", "POST", "/v1/leads?pageSize=2", `{"email":"a@example.com"}`, "pageSize"},
		{"invalid UTF-8 in a query value", "GET", "/v1/leads?filter=%ff", "", "filter"},
		{"NUL in a query value", "GET", "/v1/leads?pageToken=a%00b", "", "pageToken"},
		{"invalid UTF-8 in a path id", "GET", "/v1/leads/%ff%fe", "", "id"},
		{"NUL in a path id", "POST", "/v1/leads/a%00b:qualify", `{}`, "id"},
		{"query integer that is not a number", "GET", "/v1/leads?pageSize=abc", "", "pageSize"},
		{"query integer out of range", "GET", "/v1/leads?page_size=99999999999", "", "pageSize"},
		{"invalid UTF-8 in an operation's name", "GET", "/v1/operations/marketing.%ff", "", "name"},
		{"NUL in an operation's name", "POST", "/v1/operations/marketing.a%00b:cancel", `{}`, "name"},
		{"invalid UTF-8 in the operations' filter", "GET", "/v1/operations?filter=%ff", "", "filter"},
		{"invalid UTF-8 in the operations' page token", "GET", "/v1/operations?pageToken=%ff", "", "pageToken"},
		{"path enum that is not a value", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_NOPE?updateMask=firstResponseTarget", `{"firstResponseTarget":"7200s"}`, "priority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, key, body)
			if r.Status != 400 || r.ErrorStatus(t) != "INVALID_ARGUMENT" {
				t.Fatalf("status %d, want 400 INVALID_ARGUMENT: %s", r.Status, r.Body)
			}
			if fields := r.FieldViolations(t); !slices.Equal(fields, []string{tt.field}) {
				t.Errorf("field violations %v, want [%s]", fields, tt.field)
			}
			for _, leak := range []string{"strconv", "parsing", "type mismatch", "syntax"} {
				if strings.Contains(string(r.Body), leak) {
					t.Errorf("the answer has parser wording %q: %s", leak, r.Body)
				}
			}
		})
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("rejected requests reached the service: %v", calls)
	}
	// The accepted forms still pass: JSON and proto names of known parameters.
	for _, path := range []string{"/v1/leads?pageSize=2", "/v1/leads?page_size=2&orderBy=score%20desc"} {
		if r := sys.Do(t, "GET", path, key, nil); r.Status != 200 {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
}

// TestBodyContentType: a JSON route takes application/json (with parameters) and
// application/*+json; a body of another media type is 415 INVALID_ARGUMENT naming Content-Type
// and what the route takes, and never reaches the service. A body with no Content-Type, or a
// JSON object sent as curl -d's default form type, is read as JSON; a bodiless request is never
// refused for its Content-Type, and the import routes keep their own types.
func TestBodyContentType(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	send := func(method, path, contentType, body string) gatewaytest.Response {
		t.Helper()
		req, err := http.NewRequest(method, sys.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return gatewaytest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	lead := `{"email":"ct@example.com"}`
	for _, contentType := range []string{"text/plain", "text/plain; charset=utf-8", "application/xml", "multipart/form-data; boundary=x",
		"application/json; charset=iso-8859-1", "application/x-www-form-urlencoded", "not a media type"} {
		body := lead
		if contentType == "application/x-www-form-urlencoded" {
			body = "email=ct%40example.com" // a real form
		}
		r := send(http.MethodPost, "/v1/leads", contentType, body)
		if r.Status != http.StatusUnsupportedMediaType || r.ErrorStatus(t) != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %s, want 415 INVALID_ARGUMENT", contentType, r.Status, r.Body)
			continue
		}
		if v := r.Violations(t); len(v) != 1 || v[0][0] != "Content-Type" || !strings.Contains(v[0][1], "application/json") {
			t.Errorf("%s: field violations %q, want Content-Type saying application/json", contentType, v)
		}
	}
	if calls := sys.marketing.received(); len(calls) != 0 {
		t.Fatalf("refused bodies reached the service: %v", calls)
	}
	for i, contentType := range []string{"application/json", "application/json; charset=UTF-8", "Application/JSON",
		"application/merge-patch+json", "", "application/x-www-form-urlencoded"} {
		email := fmt.Sprintf("ct%d@example.com", i)
		if r := send(http.MethodPost, "/v1/leads", contentType, `{"email":"`+email+`"}`); r.Status != http.StatusOK || sys.marketing.captured(email) != 1 {
			t.Errorf("%q: %d %s, want the lead captured", contentType, r.Status, r.Body)
		}
	}
	// Bodiless requests: whatever type a client library puts on them.
	for _, contentType := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		if r := send(http.MethodGet, "/v1/leads", contentType, ""); r.Status != http.StatusOK {
			t.Errorf("GET with %s and no body: %d %s", contentType, r.Status, r.Body)
		}
		if r := send(http.MethodDelete, "/v1/leads/0192f3a0-0000-7000-8000-000000000001", contentType, ""); r.Status == http.StatusUnsupportedMediaType {
			t.Errorf("DELETE with %s and no body: %d %s", contentType, r.Status, r.Body)
		}
	}
	// The import routes take files, as before: CSV and NDJSON get through to the service (which
	// this fake does not implement), JSON does not.
	for contentType, want := range map[string]int{"text/csv": http.StatusNotImplemented, "application/x-ndjson": http.StatusNotImplemented,
		"application/json": http.StatusUnsupportedMediaType} {
		if r := send(http.MethodPost, "/v1/leads:import", contentType, "email\nimp@example.com\n"); r.Status != want {
			t.Errorf("import as %s: %d %s, want %d", contentType, r.Status, r.Body, want)
		}
	}
}

// TestValidationMessagesNameJSONFields: a service's validation failure names its fields in the
// message as the field violations do over REST, by the request's JSON names.
func TestValidationMessagesNameJSONFields(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{MaxBodyBytes: testMaxBody})
	_, key := sys.NewKey(t, "", "marketing.write")

	long := strings.Repeat("a", 101)
	r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ada@example.com","givenName":"`+long+`","familyName":"`+long+`"}`))
	if r.Status != http.StatusBadRequest {
		t.Fatalf("names over 100 characters: %d %s, want 400", r.Status, r.Body)
	}
	body := string(r.Body)
	if !strings.Contains(body, `"field":"lead.givenName"`) || !strings.Contains(body, `"field":"lead.familyName"`) {
		t.Fatalf("field violations do not name lead.givenName and lead.familyName: %s", body)
	}
	if strings.Contains(body, "given_name") || strings.Contains(body, "family_name") ||
		!strings.Contains(body, `"message":"invalid request: lead.givenName: `) || !strings.Contains(body, "; lead.familyName: ") {
		t.Errorf("message names proto fields, want the JSON names lead.givenName and lead.familyName: %s", body)
	}
}
