package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/crmcycle/crm/pkg/apierr"
)

const requestIDHeader = "X-Request-Id"

// withRequestID gives every response an X-Request-Id: the request's own when it is 1 to 128
// printable ASCII characters, else a new UUIDv7. The request carries it on (to the services as
// x-request-id metadata, into the span and error details).
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = uuid.Must(uuid.NewV7()).String()
			r.Header.Set(requestIDHeader, id)
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// conventions applies DESIGN §3's HTTP conventions to the API routes before grpc-gateway sees
// them: 405 with Allow for a wrong method, OPTIONS, strict path, query and body decoding, the
// update mask a PATCH body implies, and If-Match.
type conventions struct {
	routes  *routeTable
	maxBody int64
	next    http.Handler
}

// serve answers an API request, m its path looked up in the route table (once per request: the
// metrics' route label reads it too).
func (c *conventions) serve(w http.ResponseWriter, r *http.Request, m routeMatch) {
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.request.header.x-request-id", r.Header.Get(requestIDHeader)))
	route := m.route
	if m.lacking != nil {
		refuse(w, r, http.StatusNotFound, codes.NotFound, reasonMethodNotFound, "method",
			fmt.Sprintf("%s has no method :%s%s", m.lacking.template, m.verb, c.routes.verbsOf(m.lacking.template)))
		return
	}
	if route == nil {
		c.next.ServeHTTP(w, r) // grpc-gateway answers 404
		return
	}
	op, ok := route.ops[r.Method]
	if !ok {
		w.Header().Set("Allow", route.allow())
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		refuse(w, r, http.StatusMethodNotAllowed, codes.Unimplemented, reasonMethodNotAllowed, "method",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, route.template, route.allow()))
		return
	}
	if field, msg := checkPath(route, r.URL.EscapedPath()); field != "" {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, field, msg)
		return
	}
	if field, msg := checkQuery(op, r.URL.RawQuery); field != "" {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, field, msg)
		return
	}
	body, ok := c.readBody(w, r, op)
	if !ok {
		return
	}
	patchMask(r, op, body)
	if match := ifMatchHeader(r); match != "" {
		if !op.ifMatch {
			refuseIfMatch(w, r, route.template)
			return
		}
		var done bool
		if body, done = c.ifMatch(w, r, op, match, body); done {
			return
		}
	}
	if body != nil {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	c.next.ServeHTTP(w, r)
}

// validText is a path or query value the services can take: valid UTF-8 (gRPC refuses to send
// anything else) without NUL.
func validText(v string) bool { return utf8.ValidString(v) && !strings.ContainsRune(v, 0) }

// checkPath refuses a path variable that is not valid UTF-8 or holds a NUL, naming it.
func checkPath(route *routePath, escaped string) (string, string) {
	for i, seg := range strings.Split(strings.TrimPrefix(escaped, "/"), "/") {
		v, err := url.PathUnescape(seg)
		if err != nil || !validText(v) {
			return route.param(i), "must be valid UTF-8 without NUL"
		}
	}
	return "", ""
}

// checkQuery refuses query parameters the operation does not take, and values that are not valid
// UTF-8 or hold a NUL.
func checkQuery(op *routeOp, raw string) (string, string) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "query", "malformed query string"
	}
	for name, values := range q {
		if !op.query[name] {
			accepted := make([]string, 0, len(op.query))
			for n := range op.query {
				if !strings.Contains(n, "_") {
					accepted = append(accepted, n)
				}
			}
			if len(accepted) == 0 {
				return name, "unknown query parameter; this route takes none"
			}
			return name, "unknown query parameter; accepted: " + strings.Join(slices.Sorted(slices.Values(accepted)), ", ")
		}
		for _, v := range values {
			if !validText(v) {
				return name, "must be valid UTF-8 without NUL"
			}
			if bits := op.intBits[name]; bits > 0 {
				if _, err := strconv.ParseInt(v, 10, bits); err != nil {
					return name, fmt.Sprintf("must be a whole number from %d to %d", int64(-1)<<(bits-1), uint64(1)<<(bits-1)-1)
				}
			}
		}
	}
	return "", ""
}

// readBody reads the whole body (refusing more than the limit with 413), refuses a media type the
// operation does not take (415), and checks it is one JSON value of valid UTF-8, with nothing
// after it and no NUL in any string. What a value means for its field, protojson checks later
// (see strictJSON).
func (c *conventions) readBody(w http.ResponseWriter, r *http.Request, op *routeOp) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, c.maxBody+1))
	if err != nil {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "body", "unreadable")
		return nil, false
	}
	if int64(len(body)) > c.maxBody {
		clientError(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body", "request body is larger than the limit")
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return body, true // no body: its Content-Type does not matter
	}
	if msg := unsupportedBody(op, r.Header.Get("Content-Type"), body); msg != "" {
		clientError(w, r, http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type", msg)
		return nil, false
	}
	if !utf8.Valid(body) {
		line, col := position(body, invalidUTF8(body))
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "body", fmt.Sprintf("not valid UTF-8 at line %d, column %d", line, col))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "body", malformed(body, err))
		return nil, false
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(body, len(body)-len(bytes.TrimLeft(body[end:], " \t\r\n")))
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "body",
			fmt.Sprintf("more data after the JSON value, at line %d, column %d: send one JSON object", line, col))
		return nil, false
	}
	if field := nulField(v, ""); field != "" {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, field, "must not contain NUL")
		return nil, false
	}
	return body, true
}

// unsupportedBody says why a body's Content-Type is not one op takes ("" when it is). A JSON
// route takes application/json and application/*+json, in UTF-8. A body sent with no
// Content-Type is read as JSON, and so is a JSON object sent as application/x-www-form-urlencoded:
// that is what curl -d sends unless told otherwise, the API's own examples use it, and as the
// body must still be strict JSON, nothing is read as what it is not. A real form is refused.
func unsupportedBody(op *routeOp, contentType string, body []byte) string {
	if len(op.bodyTypes) == 0 || contentType == "" {
		return "" // a route without a body checks what it is sent as JSON (readBody)
	}
	accepted := strings.Join(op.bodyTypes, ", ")
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "malformed Content-Type; this route takes " + accepted
	}
	takesJSON := slices.Contains(op.bodyTypes, "application/json")
	switch {
	case slices.Contains(op.bodyTypes, mt), takesJSON && strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return "charset=" + cs + " is not accepted: send application/json in UTF-8"
		}
		return ""
	case takesJSON && mt == "application/x-www-form-urlencoded" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		return ""
	}
	return mt + " is not accepted here; this route takes " + accepted + " (with curl: -H 'Content-Type: application/json')"
}

// malformed describes a JSON syntax error with its position.
func malformed(body []byte, err error) string {
	offset := len(body)
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		offset = int(se.Offset) - 1 // the offending byte
	}
	line, col := position(body, offset)
	if offset >= len(bytes.TrimRight(body, " \t\r\n")) {
		return fmt.Sprintf("malformed JSON: it ends early, at line %d, column %d", line, col)
	}
	r, _ := utf8.DecodeRune(body[offset:])
	return fmt.Sprintf("malformed JSON at line %d, column %d: unexpected %q", line, col, r)
}

// invalidUTF8 is the offset of a body's first byte that is not valid UTF-8.
func invalidUTF8(body []byte) int {
	for i := 0; i < len(body); {
		r, n := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(body)
}

// nulField is the JSON path of the first name or string value holding a NUL ("" when none).
func nulField(v any, path string) string {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return cmp.Or(path, "body")
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) {
				return cmp.Or(path, "body")
			}
			if f := nulField(x, join(k)); f != "" {
				return f
			}
		}
	case []any:
		for i, x := range v {
			if f := nulField(x, fmt.Sprintf("%s[%d]", cmp.Or(path, "body"), i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// ifMatch honours If-Match on a change to a resource with an etag. Every such request carries the
// etag (a body field, or ?etag= on a DELETE), so the If-Match value goes there and the service
// checks it in the change's own atomic write: a change that races another cannot slip between a
// check and the write. A stale etag is ABORTED ETAG_MISMATCH, which writeError makes 412. `*` asks
// only that the resource exist, which the change finds out itself. A list of etags is narrowed by a
// read to the one that is current, still checked by the write, or 412 when none is. A request that
// carries its etag itself (?etag=, the body's) must name the same one in If-Match, else it is 400:
// neither silently wins. Routes whose request has no etag refuse If-Match (refuseIfMatch).
func (c *conventions) ifMatch(w http.ResponseWriter, r *http.Request, op *routeOp, match string, body []byte) ([]byte, bool) {
	tags, weak := parseIfMatch(match)
	if len(tags) == 0 && weak > 0 { // only weak tags, which never match a strong comparison
		writeEtagMismatch(w, r, op)
		return nil, true
	}
	if len(tags) == 0 { // `""`: no etag to check, which is not a change made unconditionally
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "If-Match", `must be an ETag ("3"), a list of them, or *`)
		return nil, true
	}
	if slices.Contains(tags, "*") {
		return body, false
	}
	if given, where := requestEtag(r, op, body); given != "" {
		if !slices.Contains(tags, given) {
			clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "If-Match",
				fmt.Sprintf("%s differs from the etag %q in %s: send the etag in one place, or the same in both", match, given, where))
			return nil, true
		}
		return body, false // the request's own etag is one If-Match names: the service checks it
	}
	tag := tags[0]
	if len(tags) == 1 && len(tag) > maxEtagLen {
		writeEtagMismatch(w, r, op) // no resource has such an ETag (the request's etag field would refuse it as too long)
		return nil, true
	}
	if len(tags) > 1 {
		current, done := c.currentEtag(w, r)
		if done {
			return nil, true
		}
		if !slices.Contains(tags, current) {
			writeEtagMismatch(w, r, op)
			return nil, true
		}
		tag = current
	}
	switch {
	case op.etagQuery:
		q := r.URL.Query()
		q.Set("etag", tag)
		r.URL.RawQuery = q.Encode()
	case op.etagBody:
		fields := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &fields) != nil {
			return body, false // not a JSON object: the service's strict decoding refuses it
		}
		fields["etag"], _ = json.Marshal(tag)
		body, _ = json.Marshal(fields)
	}
	return body, false
}

// ifMatchHeader is the request's If-Match, its fields joined as one list ("" when none).
func ifMatchHeader(r *http.Request) string {
	return strings.Join(r.Header.Values("If-Match"), ",")
}

// refuseIfMatch answers If-Match on a route that does not take it (the request has no etag for
// the service to check it against) with 400, rather than doing the change unconditionally.
func refuseIfMatch(w http.ResponseWriter, r *http.Request, template string) {
	clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "If-Match", fmt.Sprintf(
		"%s %s does not take a conditional request: If-Match applies only to the changes whose OpenAPI operation declares it; send the request without it",
		r.Method, template))
}

// requestEtag is the etag the request carries itself (?etag= or the body's etag field) and
// where, "" when none. A body etag that is not a string is left to the body's decoding to refuse.
func requestEtag(r *http.Request, op *routeOp, body []byte) (etag, where string) {
	switch {
	case op.etagQuery:
		for _, v := range r.URL.Query()["etag"] {
			if v != "" {
				return v, "the query (?etag=)"
			}
		}
	case op.etagBody:
		var fields struct{ Etag json.RawMessage }
		var tag string
		if json.Unmarshal(body, &fields) == nil && len(fields.Etag) > 0 && json.Unmarshal(fields.Etag, &tag) == nil {
			return tag, "the body"
		}
	}
	return "", ""
}

// maxEtagLen is the longest etag a request's etag field takes (the protos' max_len); ETags are
// version counters, far shorter.
const maxEtagLen = 32

// writeEtagMismatch answers an If-Match that no current ETag matches as a service answers a stale
// etag (AIP-154: ABORTED ETAG_MISMATCH), with 412.
func writeEtagMismatch(w http.ResponseWriter, r *http.Request, op *routeOp) {
	writeJSONError(w, r, http.StatusPreconditionFailed, codes.Aborted,
		"the resource changed since it was read (If-Match does not match its ETag); read it again and retry", []*anypb.Any{
			mustAny(&errdetails.ErrorInfo{Reason: apierr.ReasonEtagMismatch, Domain: op.domain})})
}

// currentEtag reads the ETag of the resource r changes (its path less a custom verb); done when the
// read failed and its answer was written instead.
func (c *conventions) currentEtag(w http.ResponseWriter, r *http.Request) (string, bool) {
	get := r.Clone(r.Context())
	get.Method, get.Body, get.ContentLength = http.MethodGet, http.NoBody, 0
	get.URL = &url.URL{Path: resourcePath(r.URL.Path), RawPath: resourcePath(r.URL.EscapedPath())}
	get.RequestURI = get.URL.RequestURI()
	get.Header.Del("Idempotency-Key")
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, get)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return "", true
	}
	return strings.Trim(rec.Header().Get("ETag"), `"`), false
}

// parseIfMatch reads `"a", "b"` or `*` into etags without quotes, and counts the weak ones
// (`W/"c"`) it leaves out: If-Match compares strongly (RFC 9110 13.1.1), so a weak tag never
// matches.
func parseIfMatch(h string) (tags []string, weak int) {
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if strings.HasPrefix(t, "W/") {
			weak++
			continue
		}
		if t = strings.Trim(t, `"`); t != "" {
			tags = append(tags, t)
		}
	}
	return tags, weak
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		if k != requestIDHeader {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// The ErrorInfo reasons of the requests the gateway refuses itself, besides INVALID_ARGUMENT.
const (
	reasonMethodNotAllowed = "METHOD_NOT_ALLOWED" // 405: the path has no such HTTP method
	reasonMethodNotFound   = "METHOD_NOT_FOUND"   // 404: the resource has no such custom method (:verb)
	reasonPathNotFound     = "PATH_NOT_FOUND"     // 404: no route has this path
)

// noRoute answers a path no route has: 404 with the reason PATH_NOT_FOUND and where the routes are.
func noRoute(w http.ResponseWriter, r *http.Request) {
	refuse(w, r, http.StatusNotFound, codes.NotFound, reasonPathNotFound, "path",
		fmt.Sprintf("no route has the path %s; the routes are listed in /openapi.json and at /docs", r.URL.Path))
}

// clientError writes an AIP-193 INVALID_ARGUMENT error the gateway found itself, with a
// BadRequest naming field.
func clientError(w http.ResponseWriter, r *http.Request, status int, c codes.Code, field, msg string) {
	refuse(w, r, status, c, "INVALID_ARGUMENT", field, msg)
}

// refuse writes an AIP-193 error the gateway found itself, with the ErrorInfo reason that matches
// its status and a BadRequest naming the part of the request at fault.
func refuse(w http.ResponseWriter, r *http.Request, status int, c codes.Code, reason, field, msg string) {
	writeJSONError(w, r, status, c, field+": "+msg, []*anypb.Any{
		mustAny(&errdetails.ErrorInfo{Reason: reason, Domain: "gateway.crm"}),
		mustAny(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}}),
	})
}
