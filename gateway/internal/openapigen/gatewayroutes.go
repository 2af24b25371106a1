package openapigen

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The routes the gateway serves itself rather than through grpc-gateway (gateway/imports.go,
// gateway/export.go): gnostic cannot describe them, because an import's body is a file streamed to
// a client-streaming RPC, an export answers NDJSON or CSV, and the operations routes send each call
// to the service its operation name carries.

const (
	importChunkMessage = "crm.type.v1.ImportChunk"
	importMetadataName = "crm.type.v1.ImportMetadata"
	operationMessage   = "google.longrunning.Operation"
	listOpsMessage     = "google.longrunning.ListOperationsResponse"

	// OperationsTag groups the operations routes, which span the importing services.
	OperationsTag = "Operations"

	unsupportedMediaType = "UnsupportedMediaType"
	payloadTooLarge      = "PayloadTooLarge"
)

// importMediaTypes are the bodies an import takes (the gateway also accepts application/ndjson and
// application/jsonl for NDJSON).
var importMediaTypes = []struct{ mediaType, description string }{
	{"text/csv", "CSV (RFC 4180, UTF-8) with a header row naming the columns."},
	{"application/x-ndjson", "One JSON object per line, keyed by the column names."},
}

// streamExports documents what an export route really answers: the records one per line as NDJSON
// (each line the record's JSON, as Get answers it), or CSV with `Accept: text/csv`; gnostic
// describes the stream's message as one JSON body instead. A server-streaming method whose response
// holds one repeated message field is such a route.
func (p *protos) streamExports(doc *openapi3.T) error {
	return operations(doc, func(path, method string, op *openapi3.Operation) error {
		m := p.methods[op.OperationID]
		if m == nil || !m.IsStreamingServer() {
			return nil
		}
		fields := m.Output().Fields()
		if fields.Len() != 1 || !fields.Get(0).IsList() || fields.Get(0).Message() == nil {
			return fmt.Errorf("openapigen: %s streams %s, which is not one list of records", op.OperationID, m.Output().FullName())
		}
		record := string(fields.Get(0).Message().Name())
		ok200 := op.Responses.Value("200")
		if ok200 == nil || ok200.Value == nil {
			return fmt.Errorf("openapigen: %s has no 200 response", op.OperationID)
		}
		csv := openapi3.NewStringSchema()
		csv.Description = "A header row of the record's JSON field names, then one row per record: strings, numbers and enum names as in the JSON, lists joined by `;`, messages as compact JSON."
		desc := fmt.Sprintf("The %s, streamed as they are read: one %s per line as NDJSON (the JSON GET answers), or CSV when the request sends `Accept: text/csv`. "+
			"An error after the first record cuts the transfer (no complete-looking body).", fields.Get(0).JSONName(), record)
		ok200.Value.Description = &desc
		ok200.Value.Content = openapi3.Content{
			"application/x-ndjson": &openapi3.MediaType{Schema: openapi3.NewSchemaRef("#/components/schemas/"+record, nil)},
			"text/csv":             &openapi3.MediaType{Schema: csv.NewRef()},
		}
		notAcceptable := "Not Acceptable: INVALID_ARGUMENT naming `Accept`, which accepts neither form " +
			"(`application/x-ndjson`, also sent for `application/json` and `*/*`, or `text/csv`; q=0 refuses a form)."
		op.Responses.Set("406", &openapi3.ResponseRef{Value: &openapi3.Response{Description: &notAcceptable,
			Content: openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/"+errorSchema, nil)),
			Headers: openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}}})
		return nil
	})
}

// addImportRoutes adds POST /v1/{resource}:import for every client-streaming method that takes
// ImportChunk (ImportLeads → /v1/leads:import) and the three operations routes, after
// addConventions (their parameters and errors are their own: an import's Idempotency-Key answers
// the first call's operation, and its errors include 413 and 415).
func (p *protos) addImportRoutes(doc *openapi3.T) error {
	if err := p.addOperationSchemas(doc); err != nil {
		return err
	}
	c := doc.Components
	tooBig := "Payload Too Large: INVALID_ARGUMENT: the body is larger than the gateway's import limit (`--max-import-bytes`, default 1 GiB). " +
		"A chunked body that goes over it ends the import: the rows before the limit may be written, see the operation."
	c.Responses[payloadTooLarge+"Import"] = &openapi3.ResponseRef{Value: &openapi3.Response{Description: &tooBig,
		Content: openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/"+errorSchema, nil)),
		Headers: openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}}}

	var services []string
	var methods []protoreflect.MethodDescriptor
	for _, m := range p.methods {
		if m.IsStreamingClient() && m.Input().FullName() == importChunkMessage {
			methods = append(methods, m)
		}
	}
	sort.Slice(methods, func(i, j int) bool { return methods[i].FullName() < methods[j].FullName() })
	for _, m := range methods {
		if m.Output().FullName() != operationMessage || !strings.HasPrefix(string(m.Name()), "Import") {
			return fmt.Errorf("openapigen: %s takes ImportChunk but is not ImportX returning an Operation", m.FullName())
		}
		resource := string(m.Name())[len("Import"):]
		path := "/v1/" + string(unicode.ToLower(rune(resource[0]))) + resource[1:] + ":import"
		if doc.Paths.Value(path) != nil {
			return fmt.Errorf("openapigen: %s is already a path", path)
		}
		service := string(m.Parent().Name())
		services = append(services, strings.ToLower(strings.TrimSuffix(service, "Service")))
		op := importOperation(m, service)
		doc.Paths.Set(path, &openapi3.PathItem{Post: op})
	}
	services = compact(services)
	if len(services) == 0 {
		return nil
	}
	addOperationsRoutes(doc, services)
	return nil
}

func importOperation(m protoreflect.MethodDescriptor, service string) *openapi3.Operation {
	mapping := openapi3.NewArraySchema()
	mapping.Items = (&openapi3.Schema{Type: &openapi3.Types{"string"}, Pattern: "="}).NewRef()
	resume := openapi3.NewInt64Schema().WithMin(0)
	body := openapi3.Content{}
	for _, t := range importMediaTypes {
		s := openapi3.NewStringSchema()
		s.Description = t.description
		body[t.mediaType] = &openapi3.MediaType{Schema: s.NewRef()}
	}
	okDesc := "The finished operation (`done`): its `response` is the import's counts and row errors when every row was read " +
		"(SUCCEEDED), or its `error` says why it stopped early: ABORTED with an ErrorInfo `IMPORT_INTERRUPTED` and `resume_from_line` " +
		"(FAILED), PERMISSION_DENIED `MISSING_SCOPE` with `resume_from_line` when another service refused the key midway (FAILED), " +
		"CANCELLED (cancelled). Rows that were not written are row errors, not an HTTP error."
	op := &openapi3.Operation{
		OperationID: string(m.Parent().Name()) + "_" + string(m.Name()),
		Tags:        []string{service},
		Description: strings.TrimSpace(methodComment(m) + "\n\nOver REST the body is the file itself, streamed to the service as it arrives " +
			"(never held whole): `Content-Type: text/csv` or `application/x-ndjson`, with the documented columns " +
			"(see the README's Import section) or `columnMapping`. The answer comes once the whole file is read; meanwhile " +
			"`GET /v1/operations` and `GET /v1/operations/{name}` show its progress. Sending a file again is safe: " +
			"every row is an upsert on its natural key.\n\nWith an `Idempotency-Key`, the first call's operation is the key's result " +
			"for 24 h once its whole file was received: a call with the key, the same route, the same query parameters and the " +
			"same file bytes imports nothing and answers that operation as it is now (running or done; a call that comes while the " +
			"first is still sending its file waits for it); other parameters are 422 at once, another file 422 once it was read, " +
			"and neither imports a row. A first call that ended before its whole file arrived (connection lost, refused, failed, " +
			"cancelled) releases the key, so a retry imports; a duplicate waiting on such a call is 409 ABORTED " +
			"`IDEMPOTENCY_KEY_IN_USE`: send it again."),
		Parameters: openapi3.Parameters{
			{Value: &openapi3.Parameter{Name: "columnMapping", In: openapi3.ParameterInQuery, Explode: ptr(true), Style: "form",
				Description: "Renames a file column to a documented column: `columnMapping=E-mail=email`; repeat it for more columns.",
				Schema:      mapping.NewRef()}},
			{Value: &openapi3.Parameter{Name: "resumeFromLine", In: openapi3.ParameterInQuery,
				Description: "Skips the data rows before this line of the file (1 is a CSV's header): send the whole file again " +
					"with the `resume_from_line` of an import that ended FAILED.",
				Schema: resume.NewRef()}},
			paramRef(requestIDParam),
			paramRef(idempotencyParam),
		},
		RequestBody: &openapi3.RequestBodyRef{Value: &openapi3.RequestBody{Required: true,
			Description: "The file: CSV or NDJSON.", Content: body}},
		Responses: openapi3.NewResponses(),
	}
	op.Summary = summary(op.Description)
	op.Responses.Set("200", jsonResponse(okDesc, "Operation"))
	setErrors(op, map[int]string{413: payloadTooLarge + "Import"},
		400, 401, 403, 409, 413, 415, 422, 429, 503)
	return op
}

// addOperationsRoutes adds GET /v1/operations, GET /v1/operations/{name} and POST
// /v1/operations/{name}:cancel: the gateway sends each to the service the name carries.
func addOperationsRoutes(doc *openapi3.T, services []string) {
	list := strings.Join(services, ", ")
	name := &openapi3.ParameterRef{Value: &openapi3.Parameter{Name: "name", In: openapi3.ParameterInPath, Required: true,
		Description: "The operation's name after `operations/`: `<service>.<id>`, where service is one of " + list + ".",
		Schema:      (&openapi3.Schema{Type: &openapi3.Types{"string"}, Pattern: "^(" + strings.Join(services, "|") + `)\.[^/]+$`}).NewRef()}}
	get := &openapi3.Operation{OperationID: OperationsTag + "_GetOperation", Tags: []string{OperationsTag},
		Description: "Gets a long-running operation (an import): its progress metadata while it runs, its result or error once done. " +
			"An import whose process stopped ends FAILED with `resume_from_line`. Needs the `<service>.read` scope of the service the name carries.",
		Parameters: openapi3.Parameters{name, paramRef(requestIDParam)}, Responses: openapi3.NewResponses()}
	get.Responses.Set("200", jsonResponse("The operation.", "Operation"))
	setErrors(get, nil, 400, 401, 403, 404, 429, 503)

	cancel := &openapi3.Operation{OperationID: OperationsTag + "_CancelOperation", Tags: []string{OperationsTag},
		Description: "Cancels a running operation: it stops at its next checkpoint, done with the error CANCELLED; the rows before it " +
			"stay written. Cancelling a done operation changes nothing. Needs the `<service>.write` scope of the service the name carries.",
		Parameters: openapi3.Parameters{name, paramRef(requestIDParam), paramRef(idempotencyParam)}, Responses: openapi3.NewResponses()}
	cancel.Responses.Set("200", jsonResponse("The operation as it is now (a running one is done at its next checkpoint).", "Operation"))
	setErrors(cancel, nil, 400, 401, 403, 404, 422, 429, 503)

	ls := &openapi3.Operation{OperationID: OperationsTag + "_ListOperations", Tags: []string{OperationsTag},
		Description: "Lists the tenant's operations of every importing service (" + list + "), newest first (by creation time), " +
			"a page at a time. A service the key has no `<service>.read` scope for is left out; with none of them the answer is 403.",
		Parameters: openapi3.Parameters{
			{Value: &openapi3.Parameter{Name: "pageSize", In: openapi3.ParameterInQuery,
				Description: "Maximum number of operations to return: default 50; a larger value is lowered to 1000 (AIP-158). " +
					"A page may hold fewer and still carry a nextPageToken.",
				Schema: openapi3.NewInt32Schema().WithMin(0).NewRef()}},
			{Value: &openapi3.Parameter{Name: "pageToken", In: openapi3.ParameterInQuery,
				Description: "The next_page_token of a previous call, to get the following page.",
				Schema:      openapi3.NewStringSchema().WithMaxLength(512).NewRef()}},
			{Value: &openapi3.Parameter{Name: "filter", In: openapi3.ParameterInQuery,
				Description: "None: operations have no index to filter on, so any filter is INVALID_ARGUMENT naming filter.",
				Schema:      openapi3.NewStringSchema().WithMaxLength(512).NewRef()}},
			paramRef(requestIDParam)},
		Responses: openapi3.NewResponses()}
	ls.Responses.Set("200", jsonResponse("A page of operations, newest first.", "ListOperationsResponse"))
	setErrors(ls, nil, 400, 401, 403, 429, 503)

	for _, op := range []*openapi3.Operation{get, cancel, ls} {
		op.Summary = summary(op.Description)
	}
	doc.Paths.Set("/v1/operations", &openapi3.PathItem{Get: ls})
	doc.Paths.Set("/v1/operations/{name}", &openapi3.PathItem{Get: get})
	doc.Paths.Set("/v1/operations/{name}:cancel", &openapi3.PathItem{Post: cancel})
	doc.Tags = append(doc.Tags, &openapi3.Tag{Name: OperationsTag,
		Description: "Long-running operations (imports) of " + list + ": the gateway sends each call to the service the operation's name carries."})
	sort.Slice(doc.Tags, func(i, j int) bool { return doc.Tags[i].Name < doc.Tags[j].Name })
}

func jsonResponse(desc, schema string) *openapi3.ResponseRef {
	return &openapi3.ResponseRef{Value: &openapi3.Response{Description: &desc,
		Content: openapi3.NewContentWithJSONSchemaRef(openapi3.NewSchemaRef("#/components/schemas/"+schema, nil)),
		Headers: openapi3.Headers{requestIDHeader: headerRef(requestIDHeader)}}}
}

// setErrors declares the AIP-193 error responses of statuses (by the shared responses, or the
// named ones of own), and the default.
func setErrors(op *openapi3.Operation, own map[int]string, statuses ...int) {
	for _, status := range statuses {
		name := own[status]
		for _, e := range errorResponses {
			if name == "" && e.status == status {
				name = e.name
			}
		}
		op.Responses.Set(fmt.Sprint(status), &openapi3.ResponseRef{Ref: "#/components/responses/" + name})
	}
	op.Responses.Set("default", &openapi3.ResponseRef{Ref: "#/components/responses/Error"})
}

// addOperationSchemas declares Operation (metadata and response are ImportMetadata, the only kind
// of operation there is), ListOperationsResponse, ImportMetadata and ImportRowError, from the
// messages.
func (p *protos) addOperationSchemas(doc *openapi3.T) error {
	meta, ok := p.messages["ImportMetadata"]
	if !ok || meta.FullName() != importMetadataName {
		return fmt.Errorf("openapigen: no message %s", importMetadataName)
	}
	p.messageSchema(doc, meta)
	opMsg, err := p.files.FindDescriptorByName(operationMessage)
	if err != nil {
		return fmt.Errorf("openapigen: %s: %w", operationMessage, err)
	}
	listMsg, err := p.files.FindDescriptorByName(listOpsMessage)
	if err != nil {
		return fmt.Errorf("openapigen: %s: %w", listOpsMessage, err)
	}
	for _, name := range []string{"Operation", "ListOperationsResponse"} {
		if _, taken := p.messages[name]; taken {
			return fmt.Errorf("openapigen: a message is named %s, which the operations routes use", name)
		}
	}
	op := p.messageSchema(doc, opMsg.(protoreflect.MessageDescriptor))
	typed := func(desc string) *openapi3.SchemaRef {
		typeURL := openapi3.NewStringSchema()
		typeURL.Enum = []any{"type.googleapis.com/" + importMetadataName}
		at := openapi3.NewObjectSchema()
		at.Properties = openapi3.Schemas{"@type": typeURL.NewRef()}
		at.Required = []string{"@type"}
		return (&openapi3.Schema{Description: desc,
			AllOf: openapi3.SchemaRefs{openapi3.NewSchemaRef("#/components/schemas/ImportMetadata", nil), at.NewRef()}}).NewRef()
	}
	op.Properties["metadata"] = typed("The import's progress (google.protobuf.Any of crm.type.v1.ImportMetadata).")
	op.Properties["response"] = typed("Once done without an error: the import's result (google.protobuf.Any of crm.type.v1.ImportMetadata).")
	op.Properties["name"].Value.Pattern = `^operations/[a-z]+\.[^/]+$`
	op.Properties["name"].Value.Description = "`operations/<service>.<id>`: the service that runs it and its id. GET `/v1/` + name reads it."
	op.Required = []string{"name"}
	p.messageSchema(doc, listMsg.(protoreflect.MessageDescriptor))
	return nil
}

// messageSchema declares the schema of a message (by its bare name, as gnostic names them) and of
// the messages it holds, from the descriptor: JSON names, protojson's renderings (64-bit integers
// as strings, timestamps as RFC 3339), the rules, enum values and field behaviours.
func (p *protos) messageSchema(doc *openapi3.T, m protoreflect.MessageDescriptor) *openapi3.Schema {
	name := string(m.Name())
	if s, done := doc.Components.Schemas[name]; done {
		return s.Value
	}
	s := openapi3.NewObjectSchema()
	s.Description = comment(m)
	s.Properties = openapi3.Schemas{}
	doc.Components.Schemas[name] = s.NewRef()
	for i := range m.Fields().Len() {
		f := m.Fields().Get(i)
		prop := p.fieldSchema(doc, f)
		if prop.Ref == "" {
			prop.Value.Description = comment(f)
			for _, b := range behaviors(f) {
				switch b {
				case annotations.FieldBehavior_OUTPUT_ONLY:
					prop.Value.ReadOnly = true
				case annotations.FieldBehavior_REQUIRED:
					s.Required = append(s.Required, f.JSONName())
				}
			}
			describeField(prop.Value, f)
		}
		s.Properties[f.JSONName()] = prop
	}
	return s
}

func (p *protos) fieldSchema(doc *openapi3.T, f protoreflect.FieldDescriptor) *openapi3.SchemaRef {
	if f.IsMap() {
		s := openapi3.NewObjectSchema()
		s.AdditionalProperties = openapi3.AdditionalProperties{Schema: p.valueSchema(doc, f.MapValue())}
		return s.NewRef()
	}
	v := p.valueSchema(doc, f)
	if f.IsList() {
		s := openapi3.NewArraySchema()
		s.Items = v
		return s.NewRef()
	}
	return v
}

// valueSchema is one value of a field, as protojson writes it.
func (p *protos) valueSchema(doc *openapi3.T, f protoreflect.FieldDescriptor) *openapi3.SchemaRef {
	switch f.Kind() {
	case protoreflect.BoolKind:
		return openapi3.NewBoolSchema().NewRef()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return openapi3.NewInt32Schema().NewRef()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return openapi3.NewInt64Schema().WithMin(0).NewRef()
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return (&openapi3.Schema{Type: &openapi3.Types{"string"}, Format: "int64"}).NewRef()
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return openapi3.NewFloat64Schema().NewRef()
	case protoreflect.BytesKind:
		return openapi3.NewBytesSchema().NewRef()
	case protoreflect.EnumKind:
		e := openapi3.NewStringSchema()
		for i := range f.Enum().Values().Len() {
			e.Enum = append(e.Enum, string(f.Enum().Values().Get(i).Name()))
		}
		return e.NewRef()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch msg := f.Message(); msg.FullName() {
		case "google.protobuf.Timestamp":
			return openapi3.NewDateTimeSchema().NewRef()
		case "google.protobuf.Duration":
			return openapi3.NewStringSchema().NewRef()
		case "google.protobuf.Any":
			return openapi3.NewSchemaRef("#/components/schemas/GoogleProtobufAny", nil)
		default:
			p.messageSchema(doc, msg)
			return openapi3.NewSchemaRef("#/components/schemas/"+string(msg.Name()), nil)
		}
	}
	return openapi3.NewStringSchema().NewRef()
}

// methodComment is a method's comment without its buf:lint:ignore lines.
func methodComment(m protoreflect.MethodDescriptor) string {
	var keep []string
	for _, l := range strings.Split(comment(m), "\n") {
		if !strings.HasPrefix(l, "buf:lint:ignore") {
			keep = append(keep, l)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

func compact(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
