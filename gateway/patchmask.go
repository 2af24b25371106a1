package gateway

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// patchMask gives a PATCH without updateMask the mask its body implies: the body's top-level
// fields, less the etag (the concurrency token it carries, not a field to change). grpc-gateway
// would derive one itself, but with the etag in it and with every sub-field of a nested object
// ("businessHours.timeZone"), which services refuse: the services replace message fields whole.
func patchMask(r *http.Request, body []byte) {
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
		if name != "etag" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	q.Set("updateMask", strings.Join(names, ","))
	r.URL.RawQuery = q.Encode()
}
