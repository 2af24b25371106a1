package gateway

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// patchMask gives a PATCH without updateMask the mask its body implies: the body's top-level
// fields, less the etag (the concurrency token it carries, not a field to change), the
// output-only fields and those the path binds (the id, not in the document's body), so a resource
// read, edited and sent back whole updates what changed (AIP-203:
// output-only input is ignored; the service checks that the immutable fields still hold their
// value). grpc-gateway would derive one itself, but with those fields in it and with every
// sub-field of a nested object ("businessHours.timeZone"), which services refuse: the services
// replace message fields whole.
func patchMask(r *http.Request, op *routeOp, body []byte) {
	q := r.URL.Query()
	if r.Method != http.MethodPatch || q.Has("updateMask") || q.Has("update_mask") {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return // not an object: decoding reports it
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		if name != "etag" && !op.readOnly[name] && (op.bodyFields == nil || op.bodyFields[name]) {
			names = append(names, name)
		}
	}
	// No field to change (an empty body, or only the etag and output-only fields): an empty mask,
	// which the service reads as the fields the request sets, and finds none: a no-op, with the
	// etag still checked.
	sort.Strings(names)
	q.Set("updateMask", strings.Join(names, ","))
	r.URL.RawQuery = q.Encode()
}
