package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// loadDocument fetches /openapi.json from the running gateway and checks it with kin-openapi.
func loadDocument(t *testing.T, sys *system) *openapi3.T {
	t.Helper()
	r := sys.Do(t, http.MethodGet, "/openapi.json", "", nil)
	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	if err != nil {
		t.Fatalf("/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("/openapi.json is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// protoRoutes are the HTTP routes of the API's services as the protos declare them (what the
// gateway serves), with path variables blanked: "PATCH /v1/leads/{}".
func protoRoutes(t *testing.T) map[string]protoreflect.MethodDescriptor {
	t.Helper()
	routes := map[string]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "crm.") {
			return true
		}
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				method, path := ruleRoute(rule)
				if method == "" {
					continue
				}
				routes[method+" "+blankVars(path)] = m
			}
		}
		return true
	})
	if len(routes) < 90 {
		t.Fatalf("found %d routes in the protos; the service packages are not linked in", len(routes))
	}
	return routes
}

func ruleRoute(r *annotations.HttpRule) (string, string) {
	switch {
	case r.GetGet() != "":
		return http.MethodGet, r.GetGet()
	case r.GetPost() != "":
		return http.MethodPost, r.GetPost()
	case r.GetPatch() != "":
		return http.MethodPatch, r.GetPatch()
	case r.GetDelete() != "":
		return http.MethodDelete, r.GetDelete()
	case r.GetPut() != "":
		return http.MethodPut, r.GetPut()
	}
	return "", ""
}

var pathVar = regexp.MustCompile(`\{[^}]*\}`)

func blankVars(path string) string { return pathVar.ReplaceAllString(path, "{}") }

// TestOpenAPIDocumentIsTheContract checks the served document against the protos it comes from
// (read here through the Go registry, not the generator's image): one operation per route and no
// two paths for one route, one tag per service, the AIP-193 errors, headers and parameters of the
// conventions, updateMask on every PATCH, and the protovalidate limits and enum values.
func TestOpenAPIDocumentIsTheContract(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	doc := loadDocument(t, sys)
	routes := protoRoutes(t)
	var services []string
	for _, m := range routes {
		services = append(services, string(m.Parent().Name()))
	}
	slices.Sort(services)
	services = slices.Compact(services)

	own := gatewayRoutes(t, sys)
	seen := map[string]bool{}
	for _, path := range doc.Paths.Keys() {
		if seen[blankVars(path)] {
			t.Errorf("two paths for one route: %s", blankVars(path))
		}
		seen[blankVars(path)] = true
		for method, op := range doc.Paths.Value(path).Operations() {
			route := method + " " + blankVars(path)
			if g, ok := own[route]; ok {
				delete(own, route)
				checkGatewayRoute(t, route, g, op)
				continue
			}
			m, ok := routes[route]
			if !ok {
				t.Errorf("%s is in the document but no proto declares it", route)
				continue
			}
			delete(routes, route)
			checkOperation(t, doc, route, m, op)
			if method == http.MethodPatch {
				checkPatchPathParams(t, doc, path, op)
			}
		}
	}
	for route := range routes {
		t.Errorf("%s is served but missing from the document", route)
	}
	for route := range own {
		t.Errorf("%s is served by the gateway itself but missing from the document", route)
	}

	var tags []string
	for _, tag := range doc.Tags {
		tags = append(tags, tag.Name)
	}
	if want := []string{"IntegrationService", "MarketingService", "Operations", "ProductService", "SalesService", "SupportService"}; !slices.Equal(tags, want) {
		t.Errorf("tags %v, want one per service %v and Operations", tags, want)
	}
	if s := doc.Components.SecuritySchemes["apiKey"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Errorf("security scheme apiKey: %+v, want HTTP bearer", s)
	}
	checkSchemas(t, doc)
	checkStringBounds(t, doc)

	yamlDoc, err := openapi3.NewLoader().LoadFromData(sys.Do(t, http.MethodGet, "/openapi.yaml", "", nil).Body)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, _ := json.Marshal(doc)
	fromYAML, _ := json.Marshal(yamlDoc)
	if !bytes.Equal(fromJSON, fromYAML) {
		t.Error("/openapi.yaml is not the document /openapi.json is")
	}
}

func checkOperation(t *testing.T, doc *openapi3.T, route string, m protoreflect.MethodDescriptor, op *openapi3.Operation) {
	t.Helper()
	if len(op.Tags) != 1 || op.Tags[0] != string(m.Parent().Name()) {
		t.Errorf("%s: tags %v, want [%s]", route, op.Tags, m.Parent().Name())
	}
	if op.Summary == "" || op.Description == "" {
		t.Errorf("%s: no summary or description", route)
	}
	params := map[string]*openapi3.Parameter{}
	for _, p := range op.Parameters {
		params[p.Value.In+":"+p.Value.Name] = p.Value
	}
	mutating := !strings.HasPrefix(route, "GET ")
	if _, ok := params["header:Idempotency-Key"]; ok != mutating {
		t.Errorf("%s: Idempotency-Key declared %v, want %v", route, ok, mutating)
	}
	if _, ok := params["header:X-Request-Id"]; !ok {
		t.Errorf("%s: no X-Request-Id parameter", route)
	}
	if strings.HasPrefix(route, "PATCH ") && params["query:updateMask"] == nil {
		t.Errorf("%s: no updateMask", route)
	}
	want := []string{"400", "401", "403", "429", "503", "default"}
	if strings.Contains(route, "{}") || mutating || strings.HasSuffix(route, ":batchGet") {
		want = append(want, "404") // a path's resource, a referred one (an order's customer), a batch's id
	}
	if mutating {
		want = append(want, "409", "422")
	}
	if params["header:If-Match"] != nil {
		want = append(want, "412")
	}
	if op.RequestBody != nil {
		want = append(want, "413", "415") // the body's size and Content-Type, which the gateway checks
	}
	for _, code := range want {
		r := op.Responses.Value(code)
		if r == nil {
			t.Errorf("%s: no %s response", route, code)
			continue
		}
		if s := r.Value.Content.Get("application/json").Schema; s.Ref != "#/components/schemas/Error" {
			t.Errorf("%s: %s response schema %s, want the AIP-193 Error", route, code, s.Ref)
		}
		if code == "429" || code == "503" {
			if r.Value.Headers["Retry-After"] == nil {
				t.Errorf("%s: %s without Retry-After", route, code)
			}
		}
	}
	ok := op.Responses.Value("200")
	if ok == nil || ok.Value.Headers["X-Request-Id"] == nil {
		t.Fatalf("%s: no 200 response with X-Request-Id", route)
	}
	if (ok.Value.Headers["Idempotent-Replayed"] != nil) != mutating {
		t.Errorf("%s: 200 declares Idempotent-Replayed %v, want %v (the writes, which take an Idempotency-Key)", route,
			ok.Value.Headers["Idempotent-Replayed"] != nil, mutating)
	}
	// The 200 body is the response_body field when the rule names one, else the whole response.
	rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
	checkRequestBody(t, route, m, rule, op)
	wantBody := m.Output()
	if f := rule.GetResponseBody(); f != "" {
		wantBody = m.Output().Fields().ByName(protoreflect.Name(f)).Message()
	}
	if m.IsStreamingServer() {
		// An export: NDJSON of the stream's records, one per line, or CSV.
		record := m.Output().Fields().Get(0).Message()
		if nd := ok.Value.Content.Get("application/x-ndjson"); nd == nil || nd.Schema.Ref != "#/components/schemas/"+string(record.Name()) {
			t.Errorf("%s: 200 NDJSON body %v, want one %s per line", route, nd, record.Name())
		}
		if ok.Value.Content.Get("text/csv") == nil || ok.Value.Content.Get("application/json") != nil {
			t.Errorf("%s: 200 bodies %v, want NDJSON and CSV only", route, ok.Value.Content)
		}
		if op.Responses.Value("406") == nil {
			t.Errorf("%s: no 406, which an Accept of neither form gets", route)
		}
		return
	}
	got := ok.Value.Content.Get("application/json").Schema
	if got.Ref == "" && got.Value.Items != nil {
		got = got.Value.Items
	}
	if got.Ref != "#/components/schemas/"+string(wantBody.Name()) {
		t.Errorf("%s: 200 body %s, want %s", route, got.Ref, wantBody.Name())
	}
	if etag := wantBody.Fields().ByName("etag"); (etag != nil) != (ok.Value.Headers["ETag"] != nil) {
		t.Errorf("%s: ETag header declared %v, body has an etag %v", route, ok.Value.Headers["ETag"] != nil, etag != nil)
	}
}

// checkRequestBody: the body schema has none of the fields the path binds (grpc-gateway takes
// them from the path, over what the body says), so a generated client never has to send an id
// twice; a path parameter's name that is a property of the body anyway is a field of the body's
// message the path does not bind, which the server sets (output only). No query parameter is a
// field of the body.
func checkRequestBody(t *testing.T, route string, m protoreflect.MethodDescriptor, rule *annotations.HttpRule, op *openapi3.Operation) {
	t.Helper()
	_, template := ruleRoute(rule)
	if rule.GetBody() == "" {
		if op.RequestBody != nil {
			t.Errorf("%s: a request body, but the rule takes none", route)
		}
		return
	}
	body := op.RequestBody.Value.Content.Get("application/json").Schema.Value
	var bound []string
	for _, v := range pathVar.FindAllString(template, -1) {
		field := strings.SplitN(strings.Trim(v, "{}"), "=", 2)[0]
		if rule.GetBody() != "*" {
			var ok bool
			if field, ok = strings.CutPrefix(field, rule.GetBody()+"."); !ok {
				continue
			}
		}
		msg := m.Input()
		if rule.GetBody() != "*" {
			msg = msg.Fields().ByName(protoreflect.Name(rule.GetBody())).Message()
		}
		bound = append(bound, msg.Fields().ByName(protoreflect.Name(field)).JSONName())
	}
	for _, name := range bound {
		if body.Properties[name] != nil || slices.Contains(body.Required, name) {
			t.Errorf("%s: the body has %s, which the path binds", route, name)
		}
	}
	for _, p := range op.Parameters {
		switch {
		case p.Value.In == openapi3.ParameterInPath:
			if s := body.Properties[p.Value.Name]; s != nil && !s.Value.ReadOnly || slices.Contains(body.Required, p.Value.Name) {
				t.Errorf("%s: the body takes %s, a path parameter", route, p.Value.Name)
			}
		case p.Value.In == openapi3.ParameterInQuery && rule.GetBody() == "*":
			t.Errorf("%s: query parameter %s, but the body is the whole request", route, p.Value.Name)
		case p.Value.In == openapi3.ParameterInQuery:
			if f := m.Input().Fields().ByName(protoreflect.Name(rule.GetBody())); strings.Split(p.Value.Name, ".")[0] == f.JSONName() {
				t.Errorf("%s: query parameter %s is in the body", route, p.Value.Name)
			}
		}
	}
}

// checkPatchPathParams: a PATCH names its resource as GET does ({lead.id} and {id} are one
// UUID), so generated clients type both alike; a PATCH with no GET beside it still carries the
// field's rules.
func checkPatchPathParams(t *testing.T, doc *openapi3.T, path string, op *openapi3.Operation) {
	t.Helper()
	get := doc.Paths.Value(path).Get
	for _, p := range op.Parameters {
		if p.Value.In != openapi3.ParameterInPath {
			continue
		}
		s := p.Value.Schema.Value
		if get == nil {
			if s.Format == "" && s.Pattern == "" && len(s.Enum) == 0 {
				t.Errorf("PATCH %s: path parameter %s carries no rule", path, p.Value.Name)
			}
			continue
		}
		want := get.Parameters.GetByInAndName(openapi3.ParameterInPath, p.Value.Name)
		if want == nil {
			t.Errorf("PATCH %s: path parameter %s, which GET does not have", path, p.Value.Name)
			continue
		}
		w := want.Schema.Value
		if s.Format != w.Format || s.Pattern != w.Pattern || !s.Type.Is(w.Type.Slice()[0]) {
			t.Errorf("PATCH %s: path parameter %s is %v %q %q, GET's is %v %q %q", path, p.Value.Name, s.Type, s.Format, s.Pattern, w.Type, w.Format, w.Pattern)
		}
		if w.Format == "" && w.Pattern == "" {
			t.Errorf("PATCH %s: GET's %s carries no rule to compare with", path, p.Value.Name)
		}
	}
}

// checkStringBounds: minimum and maximum mean nothing on a string (the 64-bit integers protojson
// writes as strings), so no schema of the document, parameters included, has them on one.
func checkStringBounds(t *testing.T, doc *openapi3.T) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		t.Fatal(err)
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			_, min := v["minimum"]
			_, max := v["maximum"]
			if v["type"] == "string" && (min || max) {
				t.Errorf("%s: a string schema with minimum/maximum: %v", where, v)
			}
			for k, c := range v {
				walk(where+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s/%d", where, i), c)
			}
		}
	}
	walk("#", tree)
}

// gatewayRoute is a route the gateway serves itself (gateway/imports.go): its tag, 200 body
// schema and error statuses.
type gatewayRoute struct {
	tag, body   string
	idempotency bool
	errors      []string
}

// gatewayRoutes are the routes the gateway serves itself: an import for every client-streaming
// method that takes ImportChunk (ImportLeads: POST /v1/leads:import), and the operations routes.
// Each is called first, to show the gateway does serve it (an import without a Content-Type is
// refused by the gateway before any service: 415).
func gatewayRoutes(t *testing.T, sys *system) map[string]gatewayRoute {
	t.Helper()
	out := map[string]gatewayRoute{}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				if !m.IsStreamingClient() || m.Input().FullName() != "crm.type.v1.ImportChunk" {
					continue
				}
				resource := strings.TrimPrefix(string(m.Name()), "Import")
				path := "/v1/" + strings.ToLower(resource[:1]) + resource[1:] + ":import"
				if r := sys.DoWith(t, http.MethodPost, path, "", []byte("email\n"), http.Header{"Content-Type": {"application/octet-stream"}}); r.Status != http.StatusUnsupportedMediaType {
					t.Errorf("POST %s without a CSV: %d, want 415 from the gateway's import route", path, r.Status)
				}
				out["POST "+path] = gatewayRoute{tag: string(s.Name()), body: "Operation", idempotency: true,
					errors: []string{"400", "401", "403", "409", "413", "415", "422", "429", "503", "default"}}
			}
		}
		return true
	})
	if len(out) != 4 {
		t.Errorf("import routes %v, want leads, contacts, accounts and products", out)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/operations", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/operations without a key: %d, want 401", r.Status)
	}
	out["GET /v1/operations"] = gatewayRoute{tag: "Operations", body: "ListOperationsResponse",
		errors: []string{"400", "401", "403", "429", "503", "default"}}
	out["GET /v1/operations/{}"] = gatewayRoute{tag: "Operations", body: "Operation",
		errors: []string{"400", "401", "403", "404", "429", "503", "default"}}
	out["POST /v1/operations/{}:cancel"] = gatewayRoute{tag: "Operations", body: "Operation", idempotency: true,
		errors: []string{"400", "401", "403", "404", "422", "429", "503", "default"}}
	return out
}

func checkGatewayRoute(t *testing.T, route string, g gatewayRoute, op *openapi3.Operation) {
	t.Helper()
	if !slices.Equal(op.Tags, []string{g.tag}) || op.Summary == "" || op.Description == "" {
		t.Errorf("%s: tags %v, summary %q; want [%s] and a summary and description", route, op.Tags, op.Summary, g.tag)
	}
	params := map[string]bool{}
	for _, p := range op.Parameters {
		params[p.Value.In+":"+p.Value.Name] = true
	}
	if !params["header:X-Request-Id"] || params["header:Idempotency-Key"] != g.idempotency {
		t.Errorf("%s: parameters %v, want X-Request-Id, Idempotency-Key %v", route, params, g.idempotency)
	}
	if strings.HasSuffix(route, ":import") {
		if !params["query:columnMapping"] || !params["query:resumeFromLine"] {
			t.Errorf("%s: parameters %v, want columnMapping and resumeFromLine", route, params)
		}
		if b := op.RequestBody; b == nil || !b.Value.Required || b.Value.Content.Get("text/csv") == nil || b.Value.Content.Get("application/x-ndjson") == nil {
			t.Errorf("%s: request body %v, want a required CSV or NDJSON file", route, b)
		}
	}
	var codes []string
	for code, r := range op.Responses.Map() {
		codes = append(codes, code)
		if code == "200" {
			if s := r.Value.Content.Get("application/json").Schema; s.Ref != "#/components/schemas/"+g.body || r.Value.Headers["X-Request-Id"] == nil {
				t.Errorf("%s: 200 body %s, want %s with X-Request-Id", route, s.Ref, g.body)
			}
			continue
		}
		if s := r.Value.Content.Get("application/json").Schema; s.Ref != "#/components/schemas/Error" {
			t.Errorf("%s: %s response schema %s, want the AIP-193 Error", route, code, s.Ref)
		}
		if (code == "429" || code == "503") && r.Value.Headers["Retry-After"] == nil {
			t.Errorf("%s: %s without Retry-After", route, code)
		}
	}
	slices.Sort(codes)
	if want := append([]string{"200"}, g.errors...); !slices.Equal(codes, want) {
		t.Errorf("%s: responses %v, want %v", route, codes, want)
	}
}

// checkSchemas compares every message schema with its message: string lengths, list sizes,
// numeric bounds, enum values, required and output-only fields.
func checkSchemas(t *testing.T, doc *openapi3.T) {
	t.Helper()
	checked := 0
	for name, s := range doc.Components.Schemas {
		desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(messagePackage(name)))
		if err != nil {
			continue
		}
		msg := desc.(protoreflect.MessageDescriptor)
		for prop, ps := range s.Value.Properties {
			f := msg.Fields().ByJSONName(prop)
			if f == nil {
				t.Errorf("%s.%s: no such field", name, prop)
				continue
			}
			checked++
			checkField(t, name+"."+prop, f, s.Value, ps.Value)
		}
	}
	if checked < 500 {
		t.Errorf("checked %d fields against their messages, want them all", checked)
	}
}

// messagePackage finds the full name of the API message called name.
func messagePackage(name string) string {
	var full string
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(string(f.Package()), "crm.") && f.Messages().ByName(protoreflect.Name(name)) != nil {
			full = string(f.Package()) + "." + name
		}
		return full == ""
	})
	return full
}

func checkField(t *testing.T, where string, f protoreflect.FieldDescriptor, parent, s *openapi3.Schema) {
	t.Helper()
	var output, required bool
	behaviors, _ := proto.GetExtension(f.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	for _, b := range behaviors {
		output = output || b == annotations.FieldBehavior_OUTPUT_ONLY
		required = required || b == annotations.FieldBehavior_REQUIRED
	}
	if s.ReadOnly != output {
		t.Errorf("%s: readOnly %v, want %v", where, s.ReadOnly, output)
	}
	if got := slices.Contains(parent.Required, f.JSONName()); got != required && !strings.HasSuffix(where, "Patch") {
		t.Errorf("%s: required %v, want %v", where, got, required)
	}
	rules, _ := proto.GetExtension(f.Options(), validate.E_Field).(*validate.FieldRules)
	if f.IsList() {
		if r := rules.GetRepeated(); r.HasMaxItems() && (s.MaxItems == nil || *s.MaxItems != r.GetMaxItems()) {
			t.Errorf("%s: maxItems %v, want %d", where, s.MaxItems, r.GetMaxItems())
		}
		rules = rules.GetRepeated().GetItems()
		if s.Items.Ref != "" {
			return
		}
		s = s.Items.Value
	}
	if r := rules.GetString(); r != nil {
		if r.HasMaxLen() && (s.MaxLength == nil || *s.MaxLength != r.GetMaxLen()) {
			t.Errorf("%s: maxLength %v, want %d", where, s.MaxLength, r.GetMaxLen())
		}
		if r.GetPattern() != s.Pattern {
			t.Errorf("%s: pattern %q, want %q", where, s.Pattern, r.GetPattern())
		}
	}
	switch f.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		// protojson writes them as strings; the format says what the string holds.
		if !s.Type.Is(openapi3.TypeString) || s.Format != "int64" {
			t.Errorf("%s: a 64-bit integer as %v %q, want a string of format int64", where, s.Type, s.Format)
		}
		if r := rules.GetInt64(); r != nil && (r.HasGte() || r.HasGt() || r.HasLte() || r.HasLt()) && s.Pattern == "" {
			t.Errorf("%s: bounds %v, but no pattern for a decimal integer", where, r)
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if !s.Type.Is(openapi3.TypeString) || s.Format != "uint64" {
			t.Errorf("%s: an unsigned 64-bit integer as %v %q, want a string of format uint64", where, s.Type, s.Format)
		}
	}
	if r := rules.GetInt32(); r != nil && r.HasGte() && (s.Min == nil || *s.Min != float64(r.GetGte())) {
		t.Errorf("%s: minimum %v, want %d", where, s.Min, r.GetGte())
	}
	if e := f.Enum(); e != nil && !f.IsMap() {
		var want []any
		for i := range e.Values().Len() {
			v := e.Values().Get(i)
			want = append(want, string(v.Name()))
			if !strings.Contains(s.Description, "`"+string(v.Name())+"`") {
				t.Errorf("%s: the description does not explain %s", where, v.Name())
			}
		}
		if !slices.Equal(s.Enum, want) {
			t.Errorf("%s: enum %v, want %v", where, s.Enum, want)
		}
	}
}

// TestServedBodiesMatchTheDocument sends requests through the gateway and checks each request and
// response (success and errors) against the document with kin-openapi's validator.
func TestServedBodiesMatchTheDocument(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	doc := loadDocument(t, sys)
	doc.Servers = openapi3.Servers{{URL: sys.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	for _, c := range []struct {
		method, path, key, body string
		wantStatus              int
	}{
		{http.MethodPost, "/v1/leads", key, `{"email":"ada@example.com","channel":"CHANNEL_WEB"}`, http.StatusOK},
		{http.MethodGet, "/v1/leads?pageSize=10", key, "", http.StatusOK},
		{http.MethodGet, "/v1/leads", "", "", http.StatusUnauthorized},
		{http.MethodGet, "/v1/leads?pageSize=-1", key, "", http.StatusBadRequest},
		{http.MethodPost, "/v1/leads", key, `{"email":"` + rejectedEmail + `"}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(c.method, sys.URL+c.path, strings.NewReader(c.body))
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if c.wantStatus == http.StatusOK {
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s %s: the request does not match the document: %v", c.method, c.path, err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.wantStatus, body)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s: the %d response does not match the document: %v\n%s", c.method, c.path, resp.StatusCode, err, body)
		}
	}
}

// readmeEmptyBody is a README call that sends an empty JSON object: `-X POST
// localhost:8080/v1/leads/$ID:qualify ... -d '{}'`.
var readmeEmptyBody = regexp.MustCompile(`-X (POST|PATCH|PUT|DELETE) "?(?:localhost:8080|\$B)(/v1/(?:\$\([^)]*\)|[^ "?])+)"?[^\n]* -d '\{\}'`)

// TestREADMEEmptyBodiesMatchTheDocument validates the README's `-d '{}'` calls (a custom method
// whose ids are all in the path) against the document with kin-openapi's request validator: the
// body schema must not ask for what the path carries.
func TestREADMEEmptyBodiesMatchTheDocument(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	doc := loadDocument(t, sys)
	doc.Servers = openapi3.Servers{{URL: "http://localhost:8080"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README's ids are shell variables ($ID, $(echo "$CY" | jq -r .id)): any UUID stands in.
	ids := regexp.MustCompile(`\$\([^)]*\)|\$[A-Z_]+`)
	checked := map[string]bool{}
	for _, c := range readmeEmptyBody.FindAllStringSubmatch(string(readme), -1) {
		path := ids.ReplaceAllString(c[2], "0192f3a0-0000-7000-8000-000000000001")
		req, _ := http.NewRequest(c[1], "http://localhost:8080"+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: %v", c[1], c[2], err)
			continue
		}
		if got := pathVar.ReplaceAllStringFunc(route.Path, func(v string) string { return params[strings.Trim(v, "{}")] }); got != path {
			t.Errorf("%s %s: matched %s as %s", c[1], path, route.Path, got)
		}
		checked[route.Path] = true
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("README's %s %s -d '{}' does not match the document: %v", c[1], c[2], err)
		}
	}
	if len(checked) < 10 {
		t.Errorf("checked the README's -d '{}' calls on %d routes (%v), want them all", len(checked), checked)
	}
}

// TestOpenAPILint runs Redocly's recommended rules over the served document: zero errors.
func TestOpenAPILint(t *testing.T) {
	redocly := gatewaytest.NodeTool(t, "redocly")
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	file := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(file, sys.Do(t, http.MethodGet, "/openapi.json", "", nil).Body, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), redocly, "lint", file, "--format=summary")
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Your API description is valid") {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
}

// TestMainOperationsHaveExamples: the operations a newcomer starts with show an example body, for
// the request (when they take one) and the 200 answer, each valid against its schema.
func TestMainOperationsHaveExamples(t *testing.T) {
	sys := startSystem(t, servicetest.Options{}, gateway.Config{})
	doc := loadDocument(t, sys)
	want := map[string]bool{ // operationId: takes a request body
		"MarketingService_CaptureLead": true, "MarketingService_GetLead": false, "MarketingService_ListLeads": false,
		"MarketingService_ResolveCustomer": true, "SalesService_CreateContact": true, "SalesService_CreateOrder": true,
		"ProductService_CreateProduct": true, "SupportService_CreateTicket": true, "SupportService_RecordNpsResponse": true,
		"IntegrationService_CreateWebhookEndpoint": true,
	}
	found := map[string]bool{}
	for _, path := range doc.Paths.Keys() {
		for _, op := range doc.Paths.Value(path).Operations() {
			body, ok := want[op.OperationID]
			if !ok {
				continue
			}
			found[op.OperationID] = true
			if body {
				media := op.RequestBody.Value.Content.Get("application/json")
				if media == nil || media.Example == nil {
					t.Errorf("%s: no request example", op.OperationID)
				} else if err := media.Schema.Value.VisitJSON(media.Example); err != nil {
					t.Errorf("%s: the request example does not match its schema: %v", op.OperationID, err)
				}
			}
			media := op.Responses.Status(200).Value.Content.Get("application/json")
			if media == nil || media.Example == nil {
				t.Errorf("%s: no 200 example", op.OperationID)
			} else if err := media.Schema.Value.VisitJSON(media.Example); err != nil {
				t.Errorf("%s: the 200 example does not match its schema: %v", op.OperationID, err)
			}
		}
	}
	for id := range want {
		if !found[id] {
			t.Errorf("no operation %s", id)
		}
	}
}
