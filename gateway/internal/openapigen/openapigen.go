// Package openapigen finishes the OpenAPI 3 document that protoc-gen-openapi (gnostic) writes from
// the protos into the contract the gateway serves, adding what the generator does not know: the
// bodies the gateway really sends (response_body) and takes (less the fields the path binds), one
// path per route, the protovalidate limits (64-bit integers being strings, as a pattern),
// what every enum value means, the AIP-193 error responses, the Idempotency-Key, If-Match,
// X-Request-Id, ETag and Retry-After headers, the API key scheme and examples, and the routes the
// gateway serves itself (imports, operations) with what exports really answer (NDJSON, CSV). Every
// rule is generic (by method, path shape and schema), so routes added to the protos get it too.
package openapigen

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// APIPackage is the proto package prefix of the API's own messages and services.
const APIPackage = "crm."

// The examples of the main operations, by operationId: a request and/or a response body.
//
//go:embed examples.json
var examplesJSON []byte

const description = `The REST/JSON edge of CRM Cycle, generated from the protos (the gRPC API on :9090 is the same).

- **Auth**: every /v1 route needs ` + "`Authorization: Bearer <api key>`" + `.
- **Errors** (AIP-193): ` + "`{\"error\": {\"code\": 404, \"status\": \"NOT_FOUND\", \"message\": \"...\", \"details\": [...]}}`" + `; invalid
  fields are listed in a google.rpc.BadRequest detail, named by their JSON path in the request.
- **Retries**: mutating calls accept an ` + "`Idempotency-Key`" + ` header (replayed for 24 h, marked ` + "`Idempotent-Replayed: true`" + `); 429 and 503 carry ` + "`Retry-After`" + `.
- **Bodies**: JSON, sent as ` + "`Content-Type: application/json`" + ` (or ` + "`application/*+json`" + `; none, or curl's default form type with a JSON object, is read as JSON too); another type is 415.
- **Concurrency**: single resources carry an ` + "`ETag`" + ` header; send it back as ` + "`If-Match`" + ` (412 ABORTED ` + "`ETAG_MISMATCH`" + ` when it changed) on the operations that declare it; elsewhere If-Match is 400, never ignored.
- **Lists** (AIP-158): ` + "`pageSize`" + ` (default 50, larger values lowered to 1000), ` + "`pageToken`" + ` from ` + "`nextPageToken`" + `, AIP-160 ` + "`filter`" + `.
- **Tracing**: every response carries ` + "`X-Request-Id`" + ` (yours, or a new one), also in logs, spans and error details.`

// Build turns gnostic's raw document and the buf image of the same protos into the final one.
func Build(raw, image []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("openapigen: raw document: %w", err)
	}
	p, err := loadProtos(image, APIPackage)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{errorSchema, errorStatusSchema, errorDetailSchema, fieldViolation} {
		if _, taken := p.messages[name]; taken {
			return nil, fmt.Errorf("openapigen: a message is named %s, which the error schema uses", name)
		}
	}
	doc.Info.Description = description
	doc.Servers = openapi3.Servers{{URL: "/", Description: "this server"}}
	for _, tag := range doc.Tags {
		tag.Description = cleanText(tag.Description)
	}
	for _, step := range []func(*openapi3.T) error{
		p.checkNames, mergePaths, p.fixResponseBodies, p.streamExports, p.describeParameters,
		func(d *openapi3.T) error { p.describeSchemas(d); return nil },
		p.requestBodies, addConventions, p.addImportRoutes, addExamples, pruneSchemas,
	} {
		if err := step(doc); err != nil {
			return nil, err
		}
	}
	// Read back what was written, so every reference added above is resolved and checked.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if doc, err = openapi3.NewLoader().LoadFromData(b); err != nil {
		return nil, fmt.Errorf("openapigen: the document does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapigen: the document is invalid: %w", err)
	}
	return doc, nil
}

// JSON renders the document as the gateway serves it (and as YAML at /openapi.yaml).
func JSON(doc *openapi3.T) ([]byte, error) {
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// addExamples puts the examples on their operations' request and 200 response bodies.
func addExamples(doc *openapi3.T) error {
	var examples map[string]struct {
		Request  any `json:"request"`
		Response any `json:"response"`
	}
	if err := json.Unmarshal(examplesJSON, &examples); err != nil {
		return fmt.Errorf("openapigen: examples.json: %w", err)
	}
	seen := map[string]bool{}
	err := operations(doc, func(_, _ string, op *openapi3.Operation) error {
		ex, ok := examples[op.OperationID]
		if !ok {
			return nil
		}
		seen[op.OperationID] = true
		if ex.Request != nil {
			if op.RequestBody == nil || op.RequestBody.Value.Content.Get("application/json") == nil {
				return fmt.Errorf("openapigen: example request for %s, which takes no body", op.OperationID)
			}
			op.RequestBody.Value.Content.Get("application/json").Example = ex.Request
		}
		if ex.Response != nil {
			op.Responses.Value("200").Value.Content.Get("application/json").Example = ex.Response
		}
		return nil
	})
	for id := range examples {
		if !seen[id] && err == nil {
			err = fmt.Errorf("openapigen: example for %s, which is no operation", id)
		}
	}
	return err
}

var schemaRef = regexp.MustCompile(`"#/components/schemas/([^"]+)"`)

// pruneSchemas drops schemas nothing refers to any more (the response messages whose field the
// gateway sends instead).
func pruneSchemas(doc *openapi3.T) error {
	for {
		b, err := json.Marshal(struct {
			Paths      *openapi3.Paths
			Components *openapi3.Components
		}{doc.Paths, doc.Components})
		if err != nil {
			return err
		}
		used := map[string]bool{}
		for _, m := range schemaRef.FindAllSubmatch(b, -1) {
			used[string(m[1])] = true
		}
		// A schema's reference to itself does not keep it.
		removed := false
		for name, s := range doc.Components.Schemas {
			if used[name] && !onlySelfRef(name, s, b) {
				continue
			}
			delete(doc.Components.Schemas, name)
			removed = true
		}
		if !removed {
			return nil
		}
	}
}

func onlySelfRef(name string, s *openapi3.SchemaRef, all []byte) bool {
	own, _ := json.Marshal(s)
	ref := `"#/components/schemas/` + name + `"`
	return strings.Count(string(all), ref) == strings.Count(string(own), ref)
}
