package openapigen

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Names this package adds to components; a message of the same name would be ambiguous.
const (
	errorSchema       = "Error"
	errorStatusSchema = "ErrorStatus"
	errorDetailSchema = "ErrorDetail"
	fieldViolation    = "FieldViolation"

	idempotencyParam = "IdempotencyKey"
	ifMatchParam     = "IfMatch"
	requestIDParam   = "RequestId"

	requestIDHeader  = "X-Request-Id"
	etagHeader       = "ETag"
	retryAfterHeader = "Retry-After"
	replayedHeader   = "Idempotent-Replayed"
)

// errorResponses are the AIP-193 error responses an operation may declare, by HTTP status, with
// the gRPC codes the gateway renders with that status.
var errorResponses = []struct {
	status      int
	name, codes string
}{
	{400, "BadRequest", "INVALID_ARGUMENT (with google.rpc.BadRequest field violations), FAILED_PRECONDITION or OUT_OF_RANGE"},
	{401, "Unauthenticated", "UNAUTHENTICATED: no, unknown or revoked API key"},
	{403, "PermissionDenied", "PERMISSION_DENIED: the API key lacks the scope the call needs"},
	{404, "NotFound", "NOT_FOUND: no such resource in the caller's tenant: the one the path names, or one the request refers to (its customer, account, campaign...), or, for a batch get, one of the ids"},
	{409, "Conflict", "ABORTED (a stale etag) or ALREADY_EXISTS (a unique key taken)"},
	{412, "PreconditionFailed", "ABORTED with the ErrorInfo reason `ETAG_MISMATCH` (as a stale etag in the request): If-Match does not match the resource's current ETag"},
	{413, "PayloadTooLarge", "INVALID_ARGUMENT: the body is larger than the gateway's limit"},
	{415, unsupportedMediaType, "INVALID_ARGUMENT: the body's Content-Type is not one the route takes (the field violation names `Content-Type`)"},
	{422, "IdempotencyKeyReused", "INVALID_ARGUMENT: the Idempotency-Key was used with a different request"},
	{429, "TooManyRequests", "RESOURCE_EXHAUSTED: over the tenant's rate limit; retry after Retry-After seconds"},
	{503, "Unavailable", "UNAVAILABLE: a dependency is down or overloaded; retry after Retry-After seconds"},
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// operations visits every operation with its path and method, in a stable order.
func operations(doc *openapi3.T, visit func(path, method string, op *openapi3.Operation) error) error {
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		methods := make([]string, 0, 5)
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			if err := visit(path, m, item.GetOperation(m)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergePaths renames path parameters that name a field of the body ({lead.id}) to the field's
// own name ({id}), so PATCH /v1/leads/{lead.id} and GET /v1/leads/{id} share one path item
// instead of being two paths that match the same URLs.
func mergePaths(doc *openapi3.T) error {
	for _, path := range doc.Paths.Keys() {
		if !strings.Contains(path, ".") || !pathParam.MatchString(path) {
			continue
		}
		renamed := map[string]string{}
		canonical := pathParam.ReplaceAllStringFunc(path, func(m string) string {
			name := strings.Trim(m, "{}")
			short := name[strings.LastIndex(name, ".")+1:]
			renamed[name] = short
			return "{" + short + "}"
		})
		if canonical == path {
			continue
		}
		item := doc.Paths.Value(path)
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if to, ok := renamed[p.Value.Name]; ok && p.Value.In == openapi3.ParameterInPath {
					p.Value.Name = to
				}
			}
		}
		target := doc.Paths.Value(canonical)
		if target == nil {
			doc.Paths.Set(canonical, item)
			doc.Paths.Delete(path)
			continue
		}
		for method, op := range item.Operations() {
			if target.GetOperation(method) != nil {
				return fmt.Errorf("openapigen: %s %s and %s %s are one route", method, path, method, canonical)
			}
			target.SetOperation(method, op)
		}
		doc.Paths.Delete(path)
	}
	return nil
}

// fixResponseBodies points the 200 response of every method with a response_body at that field's
// schema: the gateway sends the field, not the whole response message, and gnostic ignores it.
func (p *protos) fixResponseBodies(doc *openapi3.T) error {
	return operations(doc, func(path, method string, op *openapi3.Operation) error {
		m, ok := p.methods[op.OperationID]
		if !ok {
			return fmt.Errorf("openapigen: %s %s: no method %q in the protos", method, path, op.OperationID)
		}
		field := httpRule(m).GetResponseBody()
		if field == "" {
			return nil
		}
		f := m.Output().Fields().ByName(protoreflect.Name(field))
		if f == nil || f.Message() == nil {
			return fmt.Errorf("openapigen: %s: response_body %q is not a message field", op.OperationID, field)
		}
		schema := openapi3.NewSchemaRef("#/components/schemas/"+string(f.Message().Name()), nil)
		if f.IsList() {
			schema = openapi3.NewArraySchema().WithItems(nil).NewRef()
			schema.Value.Items = openapi3.NewSchemaRef("#/components/schemas/"+string(f.Message().Name()), nil)
		}
		ok200 := op.Responses.Value("200")
		if ok200 == nil || ok200.Value == nil || ok200.Value.Content.Get("application/json") == nil {
			return fmt.Errorf("openapigen: %s has no JSON 200 response", op.OperationID)
		}
		ok200.Value.Content.Get("application/json").Schema = schema
		return nil
	})
}

// describeParameters applies the request fields' rules and enum values to the path and query
// parameters that carry them. A path parameter is found by its place in the HTTP rule's path:
// mergePaths renamed {lead.id} to {id}, which is no field of UpdateLeadRequest.
func (p *protos) describeParameters(doc *openapi3.T) error {
	err := operations(doc, func(path, _ string, op *openapi3.Operation) error {
		m := p.methods[op.OperationID]
		for _, param := range op.Parameters {
			if param.Value == nil || param.Value.Schema == nil || param.Value.Schema.Value == nil {
				continue
			}
			param.Value.Description = cleanText(param.Value.Description)
			f := fieldByJSONPath(m.Input(), param.Value.Name)
			if param.Value.In == openapi3.ParameterInPath {
				_, f = pathField(m, path, param.Value.Name)
			}
			if f != nil {
				if f.Enum() != nil && len(param.Value.Schema.Value.Enum) == 0 {
					for i := range f.Enum().Values().Len() {
						param.Value.Schema.Value.Enum = append(param.Value.Schema.Value.Enum, string(f.Enum().Values().Get(i).Name()))
					}
				}
				describeField(param.Value.Schema.Value, f)
				param.Value.Description = strings.TrimSpace(param.Value.Description + "\n\n" + param.Value.Schema.Value.Description)
				param.Value.Schema.Value.Description = ""
			}
			if param.Value.Name == "updateMask" {
				param.Value.Description = strings.TrimSpace(param.Value.Description +
					"\n\nComma-separated field names (lowerCamelCase or snake_case). Omitted: the fields the body has, less etag (one sent empty is cleared).")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return sameResourceParams(doc)
}

// sameResourceParams gives a path parameter that carries no rules those of the same parameter of
// the GET of its path: PATCH /v1/leads/{id} binds Lead.id, an output-only field without rules,
// while GET binds GetLeadRequest.id (a UUID), and both name one resource, so a generated client
// types both ids alike.
func sameResourceParams(doc *openapi3.T) error {
	return operations(doc, func(path, method string, op *openapi3.Operation) error {
		get := doc.Paths.Value(path).Get
		if method == http.MethodGet || get == nil {
			return nil
		}
		for _, param := range op.Parameters {
			if param.Value == nil || param.Value.In != openapi3.ParameterInPath || !bare(param.Value.Schema) {
				continue
			}
			ref := get.Parameters.GetByInAndName(openapi3.ParameterInPath, param.Value.Name)
			if ref == nil || bare(ref.Schema) {
				continue
			}
			schema := *ref.Schema.Value
			param.Value.Schema = schema.NewRef()
			if param.Value.Description == "" {
				param.Value.Description = ref.Description
			}
		}
		return nil
	})
}

// bare reports whether a parameter's schema is a plain string, with no format or limits.
func bare(s *openapi3.SchemaRef) bool {
	if s == nil || s.Value == nil {
		return true
	}
	v := s.Value
	return v.Type.Is(openapi3.TypeString) && v.Format == "" && v.Pattern == "" && v.MinLength == 0 && v.MaxLength == nil && len(v.Enum) == 0
}

// addConventions adds the HTTP conventions of DESIGN §3 to every operation: the AIP-193 errors it
// can return, Idempotency-Key on mutating calls, If-Match where the target has an etag, the
// X-Request-Id, ETag, Retry-After and Idempotent-Replayed headers, and a summary.
func addConventions(doc *openapi3.T) error {
	addComponents(doc)
	return operations(doc, func(path, method string, op *openapi3.Operation) error {
		op.Description = cleanText(op.Description)
		if op.Summary == "" {
			op.Summary = summary(op.Description)
		}
		mutating := method != http.MethodGet
		op.Parameters = append(op.Parameters, paramRef(requestIDParam))
		if mutating {
			op.Parameters = append(op.Parameters, paramRef(idempotencyParam))
		}
		ifMatch := mutating && ifMatchApplies(doc, path, op)
		if ifMatch {
			op.Parameters = append(op.Parameters, paramRef(ifMatchParam))
		}
		for code, resp := range op.Responses.Map() {
			if resp.Value == nil || !strings.HasPrefix(code, "2") {
				continue
			}
			resp.Value.Headers = openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}
			if hasEtag(doc, resp.Value) {
				resp.Value.Headers[etagHeader] = headerRef(etagHeader)
			}
			if mutating {
				resp.Value.Headers[replayedHeader] = headerRef(replayedHeader)
			}
		}
		for _, e := range errorResponses {
			switch {
			case e.status == 404 && !mayNotFind(path, mutating),
				e.status == 409 && !mutating,
				e.status == 422 && !mutating,
				e.status == 412 && !ifMatch,
				e.status == 413 && op.RequestBody == nil,
				e.status == 415 && op.RequestBody == nil:
				continue
			}
			op.Responses.Set(fmt.Sprint(e.status), &openapi3.ResponseRef{Ref: "#/components/responses/" + e.name})
		}
		op.Responses.Set("default", &openapi3.ResponseRef{Ref: "#/components/responses/Error"})
		return nil
	})
}

// mayNotFind reports whether an operation can answer 404: it names a resource in its path, or it
// writes (a create refers to other resources, such as the customer of an order), or it is a batch
// get (all or nothing: an id that does not exist is a 404). A list of a top-level collection cannot.
func mayNotFind(path string, mutating bool) bool {
	return strings.Contains(path, "{") || mutating || strings.HasSuffix(path, ":batchGet")
}

// ifMatchApplies: a write to a resource (the path, less a custom verb) whose GET returns an etag,
// by a request that carries the etag (an `etag` query parameter or body field): the gateway puts
// If-Match there and the service checks it in the change's own atomic write, so a change that
// races another cannot slip between a check and the write.
func ifMatchApplies(doc *openapi3.T, path string, op *openapi3.Operation) bool {
	resource := path
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "}") {
		resource = path[:i]
	}
	item := doc.Paths.Value(resource)
	if item == nil || item.Get == nil || !hasEtag(doc, item.Get.Responses.Value("200").Value) {
		return false
	}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInQuery && p.Value.Name == "etag" {
			return true
		}
	}
	return op.RequestBody != nil && op.RequestBody.Value != nil && jsonHasEtag(doc, op.RequestBody.Value.Content)
}

// hasEtag reports whether a response's JSON body is a resource with an etag.
func hasEtag(doc *openapi3.T, resp *openapi3.Response) bool {
	return resp != nil && jsonHasEtag(doc, resp.Content)
}

// jsonHasEtag reports whether a body's JSON schema is an object with an etag.
func jsonHasEtag(doc *openapi3.T, content openapi3.Content) bool {
	if content.Get("application/json") == nil {
		return false
	}
	s := content.Get("application/json").Schema
	if s.Ref != "" {
		s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s != nil && s.Value != nil && s.Value.Properties["etag"] != nil
}

// summary is the first sentence of a description.
func summary(desc string) string {
	s := strings.Join(strings.Fields(desc), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if len(s) > 100 {
		if i := strings.LastIndex(s[:100], " "); i > 0 {
			s = s[:i] + "…"
		}
	}
	return s
}

func paramRef(name string) *openapi3.ParameterRef {
	return &openapi3.ParameterRef{Ref: "#/components/parameters/" + name}
}

func headerRef(name string) *openapi3.HeaderRef {
	return &openapi3.HeaderRef{Ref: "#/components/headers/" + name}
}

// addComponents declares the error schema, the shared headers, parameters and responses, and
// the API key scheme.
func addComponents(doc *openapi3.T) {
	c := doc.Components
	str := func(desc string) *openapi3.SchemaRef {
		s := openapi3.NewStringSchema()
		s.Description = desc
		return s.NewRef()
	}
	violation := openapi3.NewObjectSchema()
	violation.Description = "One invalid field of the request (google.rpc.BadRequest.FieldViolation)."
	violation.Properties = openapi3.Schemas{
		"field":       str("The field, as a path of the request's JSON names (`lead.givenName`, `pageToken`, `body`, `Idempotency-Key`)."),
		"description": str("What is wrong with it."),
	}
	violation.Required = []string{"field", "description"}
	detail := openapi3.NewObjectSchema()
	detail.Description = "One detail of an error, as google.protobuf.Any in JSON: `@type` says which of " +
		"google.rpc.ErrorInfo (reason, domain, metadata), google.rpc.BadRequest (fieldViolations), " +
		"google.rpc.RetryInfo (retryDelay) or google.rpc.RequestInfo (requestId) it is."
	metadata := openapi3.NewObjectSchema()
	metadata.AdditionalProperties = openapi3.AdditionalProperties{Schema: openapi3.NewStringSchema().NewRef()}
	metadata.Description = "ErrorInfo: more about the error, by name."
	violations := openapi3.NewArraySchema()
	violations.Items = openapi3.NewSchemaRef("#/components/schemas/"+fieldViolation, nil)
	violations.Description = "BadRequest: the invalid fields."
	detail.Properties = openapi3.Schemas{
		"@type":           str("The detail's type, e.g. `type.googleapis.com/google.rpc.ErrorInfo`."),
		"reason":          str("ErrorInfo: a stable UPPER_SNAKE_CASE reason, e.g. `LEAD_NOT_FOUND`."),
		"domain":          str("ErrorInfo: the service that raised it, e.g. `marketing.crm`."),
		"metadata":        metadata.NewRef(),
		"fieldViolations": violations.NewRef(),
		"retryDelay":      str("RetryInfo: how long to wait, e.g. `1.5s`."),
		"requestId":       str("RequestInfo: the request's X-Request-Id."),
	}
	detail.Required = []string{"@type"}
	detail.AdditionalProperties = openapi3.AdditionalProperties{Has: ptr(true)}
	codes := []any{"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNAUTHENTICATED", "PERMISSION_DENIED",
		"NOT_FOUND", "ABORTED", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED", "CANCELLED", "UNAVAILABLE",
		"DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNKNOWN", "DATA_LOSS"}
	status := openapi3.NewObjectSchema()
	status.Description = "The error (AIP-193)."
	status.Properties = openapi3.Schemas{
		"code":    &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"integer"}, Format: "int32", Description: "The HTTP status."}},
		"status":  &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"string"}, Enum: codes, Description: "The google.rpc.Code name."}},
		"message": str("A developer-facing message in English; never internal detail."),
		"details": &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"array"},
			Items: openapi3.NewSchemaRef("#/components/schemas/"+errorDetailSchema, nil), Description: "Machine-readable details."}},
	}
	status.Required = []string{"code", "status", "message"}
	envelope := openapi3.NewObjectSchema()
	envelope.Description = "Every error response: `{\"error\": {...}}` (AIP-193)."
	envelope.Properties = openapi3.Schemas{"error": openapi3.NewSchemaRef("#/components/schemas/"+errorStatusSchema, nil)}
	envelope.Required = []string{"error"}
	c.Schemas[errorSchema] = envelope.NewRef()
	c.Schemas[errorStatusSchema] = status.NewRef()
	c.Schemas[errorDetailSchema] = detail.NewRef()
	c.Schemas[fieldViolation] = violation.NewRef()

	header := func(desc string, schema *openapi3.Schema) *openapi3.HeaderRef {
		return &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{Description: desc, Schema: schema.NewRef()}}}
	}
	c.Headers = openapi3.Headers{
		requestIDHeader:  header("The request's id: the one sent, or a new one. Also in the logs, the trace and error details.", openapi3.NewStringSchema()),
		etagHeader:       header("The resource's current etag, quoted; send it back in If-Match.", openapi3.NewStringSchema()),
		retryAfterHeader: header("Seconds to wait before retrying.", openapi3.NewIntegerSchema()),
		replayedHeader: header("`true` when the answer is the stored one of an earlier request with the same Idempotency-Key (a replay: nothing ran again); absent otherwise.",
			openapi3.NewStringSchema().WithEnum("true")),
	}
	keySchema := openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(255)
	keySchema.Pattern = "^[\\x21-\\x7E]+$"
	idSchema := openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(128)
	idSchema.Pattern = "^[\\x21-\\x7E]+$"
	c.Parameters = openapi3.ParametersMap{
		idempotencyParam: {Value: &openapi3.Parameter{Name: "Idempotency-Key", In: openapi3.ParameterInHeader,
			Description: "Makes a retry safe: the first result is stored for 24 h and replayed byte-identical; the same key with a different request is 422.",
			Schema:      keySchema.NewRef()}},
		ifMatchParam: {Value: &openapi3.Parameter{Name: "If-Match", In: openapi3.ParameterInHeader,
			Description: "The ETag the change is based on (`\"<etag>\"`, or `*`); another current ETag is 412.",
			Schema:      openapi3.NewStringSchema().NewRef()}},
		requestIDParam: {Value: &openapi3.Parameter{Name: requestIDHeader, In: openapi3.ParameterInHeader,
			Description: "Your id for the request (printable ASCII); one is made when absent. Echoed in the response.",
			Schema:      idSchema.NewRef()}},
	}
	errorBody := openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/"+errorSchema, nil))
	c.Responses = openapi3.ResponseBodies{}
	for _, e := range errorResponses {
		desc := fmt.Sprintf("%s: %s.", http.StatusText(e.status), e.codes)
		r := &openapi3.Response{Description: &desc, Content: errorBody,
			Headers: openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}}
		if e.status == 429 || e.status == 503 {
			r.Headers[retryAfterHeader] = headerRef(retryAfterHeader)
		}
		if e.status == 400 || e.status == 404 || e.status == 409 {
			// The client errors a write stores for its Idempotency-Key, and replays.
			r.Headers[replayedHeader] = headerRef(replayedHeader)
		}
		c.Responses[e.name] = &openapi3.ResponseRef{Value: r}
	}
	other := "Any other error, in the same AIP-193 shape."
	c.Responses["Error"] = &openapi3.ResponseRef{Value: &openapi3.Response{Description: &other, Content: errorBody,
		Headers: openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}}}
	c.SecuritySchemes = openapi3.SecuritySchemes{"apiKey": {Value: &openapi3.SecurityScheme{
		Type: "http", Scheme: "bearer", BearerFormat: "API key",
		Description: "`Authorization: Bearer <api key>`; `make run` accepts `crm_dev_key`."}}}
	doc.Security = openapi3.SecurityRequirements{{"apiKey": []string{}}}
}

// requestBodies gives an operation its own body schema where the message's would say more than
// the body takes. The fields the path binds are not in the body (grpc-gateway fills them from the
// path, over anything the body says): POST /v1/apiKeys/{id}:revoke takes RevokeApiKeyBody, the
// request message less id, and PATCH /v1/leads/{id} a Lead less id. A PATCH body has no
// `required` either: REQUIRED fields must be there on create, but a partial update sends only the
// fields its updateMask names. A PATCH's schema is named for its message (LeadPatch), another's
// for its method (RevokeApiKeyBody).
func (p *protos) requestBodies(doc *openapi3.T) error {
	bounds := map[string][]string{} // derived schema → the fields it leaves out
	return operations(doc, func(path, method string, op *openapi3.Operation) error {
		if op.RequestBody == nil || op.RequestBody.Value.Content.Get("application/json") == nil {
			return nil
		}
		body := op.RequestBody.Value.Content.Get("application/json")
		name := strings.TrimPrefix(body.Schema.Ref, "#/components/schemas/")
		full := doc.Components.Schemas[name]
		if body.Schema.Ref == "" || full == nil || full.Value == nil {
			return nil
		}
		m := p.methods[op.OperationID]
		bound := boundInBody(m)
		patch := method == http.MethodPatch
		if len(bound) == 0 && (!patch || len(full.Value.Required) == 0) {
			return nil
		}
		inPath := ""
		if len(bound) > 0 {
			inPath = " The path carries " + strings.Join(bound, " and ") + "."
		}
		derived, note := string(m.Name())+"Body", "As sent in the body of "+method+" "+path+"."+inPath
		if patch {
			derived, note = name+"Patch", "As sent to PATCH: only the fields updateMask names are needed."+inPath
		}
		if _, taken := p.messages[derived]; taken {
			return fmt.Errorf("openapigen: a message is named %s, which the body of %s uses", derived, op.OperationID)
		}
		if prev, done := bounds[derived]; done {
			if !slices.Equal(prev, bound) {
				return fmt.Errorf("openapigen: %s is the body of two routes whose paths bind %v and %v", derived, prev, bound)
			}
		} else {
			if _, taken := doc.Components.Schemas[derived]; taken {
				return fmt.Errorf("openapigen: schema %s, the body of %s, is taken", derived, op.OperationID)
			}
			bounds[derived] = bound
			s := *full.Value
			s.Properties = openapi3.Schemas{}
			for prop, ps := range full.Value.Properties {
				if !slices.Contains(bound, prop) {
					s.Properties[prop] = ps
				}
			}
			s.Required = nil
			for _, r := range full.Value.Required {
				if !patch && !slices.Contains(bound, r) {
					s.Required = append(s.Required, r)
				}
			}
			s.Description = strings.TrimSpace(s.Description + "\n\n" + note)
			doc.Components.Schemas[derived] = s.NewRef()
		}
		body.Schema = openapi3.NewSchemaRef("#/components/schemas/"+derived, nil)
		return nil
	})
}

// boundInBody are the JSON names of the body's fields that the path binds: every path variable's
// field under body "*", those under the body's field otherwise (lead.id of body "lead").
func boundInBody(m protoreflect.MethodDescriptor) []string {
	rule := httpRule(m)
	var bound []string
	for _, field := range pathFields(m) {
		rest, ok := field, rule.GetBody() == "*"
		if !ok {
			rest, ok = strings.CutPrefix(field, rule.GetBody()+".")
		}
		// {a.b} under body "*" would bind a part of a, a schema of its own: no route does that.
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		if f := fieldByJSONPath(m.Input(), field); f != nil {
			bound = append(bound, f.JSONName())
		}
	}
	slices.Sort(bound)
	return bound
}
