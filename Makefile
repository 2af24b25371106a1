# CRM Cycle: the front door. `make run` and `make test` need only Go (and redis-server for tests,
# which .ci/run installs).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES := proto pkg services/marketing services/sales services/product services/support services/integration gateway cmd/crm
PACKAGES := $(addsuffix /...,$(addprefix ./,$(MODULES)))
BIN := $(CURDIR)/.bin
# Third-party .proto imports, taken at generate time from the Go module cache (google/api http
# rules, buf/validate) and from the npm package google-proto-files pinned in tools/package-lock.json
# (field_behavior, longrunning and what they import, which no Go module here ships).
GOOGLEAPIS_MODULE := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
PROTOVALIDATE_MODULE := github.com/bufbuild/protovalidate@v1.2.2
GOOGLE_PROTO_FILES := tools/node_modules/google-proto-files
NPM_PROTOS := google/api/field_behavior.proto google/api/client.proto google/api/launch_stage.proto \
	google/longrunning/operations.proto google/rpc/status.proto
PROTODEPS := .build/protodeps
TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapi grpcurl

.PHONY: run demo build test lint generate bench tools protodeps npm clean

## run: everything in one process on the embedded store (REST :8080, gRPC :9090)
run:
	CRM_DEV_API_KEY="$${CRM_DEV_API_KEY:-crm_dev_key}" go run ./cmd/crm dev

## demo: `make run`, with the development tenant seeded through the APIs (campaigns, leads,
## deals, orders, subscriptions, tickets, NPS)
demo:
	CRM_DEV_API_KEY="$${CRM_DEV_API_KEY:-crm_dev_key}" go run ./cmd/crm dev --demo

## build: the crm binary into .bin/crm
build:
	go build -o $(BIN)/crm ./cmd/crm

## test: every module, with the race detector, against real redis-server processes (CI also sets
## CRM_LONG_TESTS=1 for the large data sets, which take some packages past go test's 10-minute default)
test:
	go test -race -count=1 -timeout 30m $(PACKAGES)

## lint: buf lint, go vet, gofmt and go mod tidy for every module
lint: tools protodeps
	$(BIN)/buf lint
	go vet $(PACKAGES)
	@unformatted="$$(gofmt -l $(MODULES))"; if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	@for m in $$(find . -name go.mod -not -path '*/node_modules/*' -not -path '*/testdata/*' -printf '%h\n' | sort); do (cd $$m && GOWORK=off go mod tidy -diff) || { echo "go mod tidy: $$m is not tidy"; exit 1; }; done

## generate: Go, gRPC, gateway and OpenAPI 3 code from proto/ (committed). gnostic writes the raw
## OpenAPI document from the protos; gateway/cmd/openapigen finishes it (kin-openapi) into
## gateway/openapi/openapi.{json,yaml} with the buf image of the same protos.
generate: tools protodeps
	find proto -name '*.pb.go' -o -name '*.pb.gw.go' | xargs -r rm
	rm -rf gateway/openapi .build/openapi
	$(BIN)/buf generate
	$(BIN)/buf build -o .build/openapi/image.binpb
	go run ./gateway/cmd/openapigen -raw .build/openapi/openapi.yaml -image .build/openapi/image.binpb -out gateway/openapi

## bench: load the running system and print the ratios of DESIGN.md §10
bench: build tools
	bash bench/run.sh

tools: $(addprefix $(BIN)/,$(TOOLS))

# Tools are built from the versions pinned in tools/go.mod, once per change of that file.
$(BIN)/%: tools/go.mod tools/go.sum
	cd tools && GOWORK=off go build -o $(BIN)/ $$(GOWORK=off go list -f '{{.ImportPath}}' tool | grep '/$*$$')

## npm: the npm tools pinned by tools/package-lock.json, into tools/node_modules (needs Node.js)
npm: tools/node_modules/.package-lock.json

tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	cd tools && npm ci --ignore-scripts --no-audit --no-fund

protodeps: npm
	@rm -rf $(PROTODEPS) && mkdir -p $(PROTODEPS)/google/api $(PROTODEPS)/buf/validate
	@cd $(GOOGLE_PROTO_FILES) && cp --parents $(NPM_PROTOS) $(CURDIR)/$(PROTODEPS)/
	@googleapis="$$(go mod download -json $(GOOGLEAPIS_MODULE) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"; \
	 protovalidate="$$(go mod download -json $(PROTOVALIDATE_MODULE) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"; \
	 cp "$$googleapis"/third_party/googleapis/google/api/{annotations,http}.proto $(PROTODEPS)/google/api/; \
	 cp "$$protovalidate"/proto/protovalidate/buf/validate/validate.proto $(PROTODEPS)/buf/validate/; \
	 chmod -R u+w $(PROTODEPS)

clean:
	rm -rf .bin .build
