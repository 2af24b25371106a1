package gateway

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// The merged OpenAPI document `make generate` writes from the proto comments and annotations.
//
//go:embed openapi/crm.swagger.json
var generatedDoc []byte

//go:embed docs.html
var docsPage []byte

// openAPIDocument adds what the protos do not say: the title and the bearer-key security scheme.
func openAPIDocument() ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(generatedDoc, &doc); err != nil {
		return nil, fmt.Errorf("gateway: openapi: %w", err)
	}
	doc["info"] = map[string]any{
		"title":       "CRM Cycle API",
		"version":     "v1",
		"description": "REST/JSON edge of CRM Cycle. Every /v1 route needs `Authorization: Bearer <api key>`; mutating calls accept an `Idempotency-Key` header. Errors follow AIP-193.",
	}
	doc["securityDefinitions"] = map[string]any{
		"bearer": map[string]any{"type": "apiKey", "name": "Authorization", "in": "header",
			"description": "Bearer <api key>"},
	}
	doc["security"] = []any{map[string]any{"bearer": []any{}}}
	return json.MarshalIndent(doc, "", "  ")
}
