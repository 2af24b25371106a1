package gateway

import (
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v4"
)

// The OpenAPI 3 document `make generate` writes from the protos (gnostic, finished by
// gateway/cmd/openapigen): the contract generated clients are built from.
//
//go:embed openapi/openapi.json
var openAPIJSON []byte

//go:embed docs.html
var docsPage []byte

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
