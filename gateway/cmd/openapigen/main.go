// Command openapigen finishes the OpenAPI document of `make generate`: it reads gnostic's raw
// document and the buf image of the same protos, and writes openapi.json
// (the gateway also serves it as YAML).
//
//	go run ./gateway/cmd/openapigen -raw .build/openapi/openapi.yaml -image .build/openapi/image.binpb -out gateway/openapi
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crmcycle/crm/gateway/internal/openapigen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("openapigen", flag.ContinueOnError)
	raw := fs.String("raw", "", "gnostic's raw document (YAML)")
	image := fs.String("image", "", "buf image of the protos (buf build -o x.binpb)")
	out := fs.String("out", "", "folder for openapi.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rawDoc, err := os.ReadFile(*raw)
	if err != nil {
		return err
	}
	img, err := os.ReadFile(*image)
	if err != nil {
		return err
	}
	doc, err := openapigen.Build(rawDoc, img)
	if err != nil {
		return err
	}
	js, err := openapigen.JSON(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, "openapi.json"), js, 0o644)
}
