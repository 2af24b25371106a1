package gateway

import (
	_ "embed"
	"fmt"
	"net/http"

	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"
	"go.yaml.in/yaml/v4"
)

// The OpenAPI 3 document `make generate` writes from the protos (gnostic, finished by
// gateway/cmd/openapigen): the contract generated clients are built from.
//
//go:embed openapi/openapi.json
var openAPIJSON []byte

// openAPIYAML is the same document as YAML, for tools that prefer it.
func openAPIYAML() ([]byte, error) {
	var doc yaml.Node // JSON is YAML: read as nodes, the keys keep their order
	if err := yaml.Unmarshal(openAPIJSON, &doc); err != nil {
		return nil, fmt.Errorf("gateway: openapi: %w", err)
	}
	var plain func(*yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(&doc)
	return yaml.Marshal(&doc)
}

// docsHandler is the API reference at /docs: Swagger UI 5, embedded in the binary (no CDN), over
// /openapi.json: operations grouped by service (one tag each), a search box over the groups,
// schemas with their limits and enum values expanded, the examples, and "Try it out" against this
// server with the API key typed once under Authorize.
func docsHandler() http.Handler {
	return v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "CRM Cycle API",
		SwaggerJSON: "/openapi.json",
		BasePath:    "/docs/",
		SettingsUI: map[string]string{
			"filter":                   "true",
			"docExpansion":             `"list"`,
			"defaultModelsExpandDepth": "1",
			"defaultModelExpandDepth":  "2",
			"tryItOutEnabled":          "true",
			"persistAuthorization":     "true",
			"displayRequestDuration":   "true",
			"showExtensions":           "false",
		},
	})
}
