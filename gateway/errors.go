package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/crmcycle/crm/pkg/apierr"
)

// errorBody is the AIP-193 error shape.
type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code    int               `json:"code"`
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// bodyErrorPrefix marks errors of decoding the request body (see bodyError).
const bodyErrorPrefix = "invalid request body: "

// routingError answers a path grpc-gateway has no route for as the gateway's own refusals are
// answered (AIP-193 body, ErrorInfo reason PATH_NOT_FOUND) instead of a bare "Not Found". The
// conventions answer a wrong method (405) before grpc-gateway sees the request.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusNotFound {
		noRoute(w, r)
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}

// writeError renders any error as {"error":{"code","status","message","details"}}.
func writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		httpStatus = he.HTTPStatus
		err = he.Err
	}
	st := answerable(status.Convert(err))
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	msg, details := st.Message(), st.Proto().GetDetails()
	if st.Code() == codes.InvalidArgument && len(details) == 0 {
		msg, details = clientErrorDetails(msg)
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		for _, v := range append(md.HeaderMD.Get("retry-after"), md.TrailerMD.Get("retry-after")...) {
			w.Header().Set("Retry-After", v)
		}
	}
	setReplayedFrom(ctx, w)
	if st.Code() == codes.Unavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	if reasonOf(st) == "IDEMPOTENCY_KEY_REUSED" {
		httpStatus = http.StatusUnprocessableEntity // as Stripe: the request is well-formed, the key is not
	}
	if reasonOf(st) == apierr.ReasonEtagMismatch && r.Header.Get("If-Match") != "" {
		// The etag If-Match carried is stale. Other ABORTED answers (a concurrent update, a key
		// in use) stay 409: the precondition did not fail, a retry may succeed.
		httpStatus = http.StatusPreconditionFailed
	}
	writeJSONError(w, r, httpStatus, st.Code(), msg, details)
}

// retryAfterSeconds is the wait a 503 suggests when the service did not say.
const retryAfterSeconds = "1"

// answerable keeps a service's answer (it carries an ErrorInfo) and replaces what the gateway's
// own connection to a service reports (dial, TLS, reset), whose text is not for clients.
func answerable(st *status.Status) *status.Status {
	if reasonOf(st) != "" {
		return st
	}
	var reason, msg string
	switch st.Code() {
	case codes.Unavailable:
		reason, msg = "SERVICE_UNAVAILABLE", "the service is unavailable right now; retry"
	case codes.Internal, codes.Unknown, codes.DataLoss:
		reason, msg = "INTERNAL", "internal error"
	default:
		return st
	}
	out, err := status.New(st.Code(), msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "gateway.crm"})
	if err != nil {
		return status.New(st.Code(), msg)
	}
	return out
}

func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// clientErrorDetails describes errors grpc-gateway found in the request (a body the decoder
// refused, a bad path or query parameter), which reach writeError without details: the message
// to answer and its details.
func clientErrorDetails(msg string) (string, []*anypb.Any) {
	field, desc := "query", msg
	if f, d, ok := parseBodyError(msg); ok {
		field, desc = f, d
	} else if f, d, ok := parseParamError(msg); ok {
		field, desc = f, d
	}
	if field != "query" {
		msg = field + ": " + desc // as clientError words it
	}
	return msg, []*anypb.Any{
		mustAny(&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: "gateway.crm"}),
		mustAny(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}}),
	}
}

// grpc-gateway's words for a path or query value it cannot parse into its field ("type mismatch,
// parameter: sla_policy.priority, error: parsing field \"priority\": \"X\" is not a valid value",
// `parsing field "page_size": strconv.ParseInt: ...`). The edge checks the query's integers
// itself (checkQuery); what is left is named here without the parser's wording.
var (
	paramMismatch = regexp.MustCompile(`^type mismatch, parameter: ([\w.]+), error: `)
	fieldParse    = regexp.MustCompile(`parsing field "([\w.]+)": `)
	quotedValue   = regexp.MustCompile(`("[^"]*") is not a valid value`)
)

func parseParamError(msg string) (field, desc string, ok bool) {
	m := paramMismatch.FindStringSubmatch(msg)
	if m == nil {
		m = fieldParse.FindStringSubmatch(msg)
	}
	if m == nil {
		return "", "", false
	}
	field = m[1][strings.LastIndex(m[1], ".")+1:]
	if v := quotedValue.FindStringSubmatch(msg); v != nil {
		return field, v[1] + " is not a valid " + camelPath(field), true
	}
	return field, "is not a valid value", true
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only for the errdetails messages above, which always marshal
	}
	return a
}

// restDetail is an error detail as REST shows it: a BadRequest's field violations name fields as
// the request's JSON does (lead.givenName, not lead.given_name); other details as they are. The
// message names the fields too ("ticket.customer_id: value is required"), so it is renamed alike.
func restDetail(d *anypb.Any, msg *string) *anypb.Any {
	br := new(errdetails.BadRequest)
	if !d.MessageIs(br) || d.UnmarshalTo(br) != nil {
		return d
	}
	for _, v := range br.GetFieldViolations() {
		named := camelPath(v.GetField())
		if named != v.GetField() {
			*msg = strings.ReplaceAll(*msg, v.GetField()+": ", named+": ")
		}
		v.Field = named
	}
	return mustAny(br)
}

// writeJSONError writes the AIP-193 body. Field violations name fields as the request's JSON does
// (lead.givenName, not lead.given_name), and a google.rpc.RequestInfo detail carries the request id.
func writeJSONError(w http.ResponseWriter, r *http.Request, httpStatus int, c codes.Code, msg string, details []*anypb.Any) {
	if id := r.Header.Get(requestIDHeader); id != "" {
		details = append(details, mustAny(&errdetails.RequestInfo{RequestId: id}))
	}
	var shown []json.RawMessage
	for _, d := range details {
		if raw, err := protojson.Marshal(restDetail(d, &msg)); err == nil {
			shown = append(shown, raw)
		}
	}
	body := errorBody{Error: errorPayload{Code: httpStatus, Status: code.Code(c).String(), Message: msg, Details: shown}}
	w.Header().Set("Content-Type", "application/json")
	if c == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crm"`)
	}
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(body)
}

// strictJSON is protojson that rejects unknown fields, and explains a body it refuses in the
// REST JSON's terms (see explainBody).
type strictJSON struct{ *runtime.JSONPb }

func (m strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return bodyError{field: "body", desc: "unreadable"}
		}
		err = m.JSONPb.NewDecoder(bytes.NewReader(data)).Decode(v)
		if err == nil || errors.Is(err, io.EOF) {
			return err // io.EOF: no body, which the generated handlers take as an empty request
		}
		if md := bodyMessage(v); md != nil {
			if field, desc, ok := explainBody(data, md); ok {
				return bodyError{field: field, desc: desc}
			}
		}
		return bodyError{field: "body", desc: "does not match the request's JSON fields (see the OpenAPI document)"}
	})
}

// bodyError is a body the decoder refused. grpc-gateway turns it into a status by its text
// alone, so the text carries the field for writeError to read back: the prefix, the quoted field,
// a space and the description.
type bodyError struct{ field, desc string }

func (e bodyError) Error() string { return bodyErrorPrefix + strconv.Quote(e.field) + " " + e.desc }

// parseBodyError reads a bodyError's text back.
func parseBodyError(msg string) (field, desc string, ok bool) {
	rest, ok := strings.CutPrefix(msg, bodyErrorPrefix)
	if !ok {
		return "", "", false
	}
	quoted, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", "", false
	}
	field, err = strconv.Unquote(quoted)
	return field, strings.TrimPrefix(rest[len(quoted):], " "), err == nil
}
