package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/pagesize"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// importChunk is how many bytes of the body go in one stream message.
const importChunk = 256 << 10

// The import and operation routes bypass the JSON conventions (a whole-body read): an import
// body is a file streamed to a client-streaming Import RPC a chunk at a time, so a 100 MB file
// never sits in memory; operations are routed by the service their name carries.
type imports struct {
	rest    *runtime.ServeMux
	maxBody int64
	routes  map[string]importRoute // by path
	ops     map[string]operationsClient
}

type importStream = grpc.ClientStreamingClient[typev1.ImportChunk, longrunningpb.Operation]

type importRoute struct {
	method string
	open   func(ctx context.Context) (importStream, error)
}

// operationsClient is the operations part of a service's client.
type operationsClient interface {
	GetOperation(ctx context.Context, in *longrunningpb.GetOperationRequest, opts ...grpc.CallOption) (*longrunningpb.Operation, error)
	CancelOperation(ctx context.Context, in *longrunningpb.CancelOperationRequest, opts ...grpc.CallOption) (*longrunningpb.Operation, error)
	ListOperations(ctx context.Context, in *longrunningpb.ListOperationsRequest, opts ...grpc.CallOption) (*longrunningpb.ListOperationsResponse, error)
}

func newImports(rest *runtime.ServeMux, maxBody int64, b Backends) *imports {
	m, s, p := marketingv1.NewMarketingServiceClient(b.Marketing), salesv1.NewSalesServiceClient(b.Sales), productv1.NewProductServiceClient(b.Product)
	if maxBody <= 0 {
		maxBody = 1 << 30
	}
	return &imports{rest: rest, maxBody: maxBody,
		routes: map[string]importRoute{
			"/v1/leads:import": {marketingv1.MarketingService_ImportLeads_FullMethodName,
				func(ctx context.Context) (importStream, error) { return m.ImportLeads(ctx) }},
			"/v1/contacts:import": {salesv1.SalesService_ImportContacts_FullMethodName,
				func(ctx context.Context) (importStream, error) { return s.ImportContacts(ctx) }},
			"/v1/accounts:import": {salesv1.SalesService_ImportAccounts_FullMethodName,
				func(ctx context.Context) (importStream, error) { return s.ImportAccounts(ctx) }},
			"/v1/products:import": {productv1.ProductService_ImportProducts_FullMethodName,
				func(ctx context.Context) (importStream, error) { return p.ImportProducts(ctx) }},
		},
		ops: map[string]operationsClient{"marketing": m, "sales": s, "product": p},
	}
}

// handles reports whether the request is one of these routes.
func (im *imports) handles(r *http.Request) bool {
	_, ok := im.routes[r.URL.Path]
	return ok || r.URL.Path == "/v1/operations" || strings.HasPrefix(r.URL.Path, "/v1/operations/")
}

func (im *imports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if route, ok := im.routes[r.URL.Path]; ok {
		im.serveImport(route, w, r)
		return
	}
	im.serveOperations(w, r)
}

// serveImport streams the body to the Import RPC and answers the finished operation.
func (im *imports) serveImport(route importRoute, w http.ResponseWriter, r *http.Request) {
	trace.SpanFromContext(r.Context()).SetName("POST " + r.URL.Path)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, r, http.StatusMethodNotAllowed, codes.Unimplemented, reasonMethodNotAllowed, "method", r.Method+" is not allowed; allowed: POST")
		return
	}
	if ifMatchHeader(r) != "" {
		refuseIfMatch(w, r, r.URL.Path)
		return
	}
	first := &typev1.ImportChunk{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "text/csv":
		first.Format = typev1.ImportFormat_IMPORT_FORMAT_CSV
	case "application/x-ndjson", "application/ndjson", "application/jsonl":
		first.Format = typev1.ImportFormat_IMPORT_FORMAT_NDJSON
	default:
		clientError(w, r, http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type",
			"an import body is text/csv or application/x-ndjson")
		return
	}
	for name, values := range r.URL.Query() {
		switch name {
		case "columnMapping":
			first.ColumnMapping = map[string]string{}
			for _, v := range values {
				from, to, ok := strings.Cut(v, "=")
				if !ok {
					clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "columnMapping", "each is FileColumn=column")
					return
				}
				first.ColumnMapping[from] = to
			}
		case "resumeFromLine":
			n, err := strconv.ParseInt(values[0], 10, 64)
			if err != nil || n < 0 {
				clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "resumeFromLine", "must be a line number")
				return
			}
			first.ResumeFromLine = n
		default:
			clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, name,
				"unknown query parameter; accepted: columnMapping, resumeFromLine")
			return
		}
	}
	if r.ContentLength > im.maxBody {
		clientError(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body",
			fmt.Sprintf("an import body is at most %d bytes; split the file", im.maxBody))
		return
	}
	ctx, err := runtime.AnnotateContext(r.Context(), im.rest, r, route.method, runtime.WithHTTPPathPattern(r.URL.Path))
	if err != nil {
		writeError(r.Context(), im.rest, nil, w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := route.open(ctx)
	if err != nil {
		writeError(ctx, im.rest, nil, w, r, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, im.maxBody)
	for msg := first; ; msg = new(typev1.ImportChunk) {
		buf := make([]byte, importChunk) // a message is not to be changed once sent
		n, rerr := io.ReadFull(body, buf)
		msg.Data = buf[:n]
		if n > 0 || msg == first {
			if err := stream.Send(msg); errors.Is(err, io.EOF) {
				drain(body)
				break // the service ended the import early: its answer says why
			} else if err != nil {
				drain(body)
				writeError(ctx, im.rest, nil, w, r, err)
				return
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if _, ok := errors.AsType[*http.MaxBytesError](rerr); ok {
			// The service ends the operation FAILED with why (not as an interrupted import),
			// keeping the batches before the limit.
			if err := stream.Send(&typev1.ImportChunk{OverLimitBytes: im.maxBody}); err == nil || errors.Is(err, io.EOF) {
				_, _ = stream.CloseAndRecv()
			}
			cancel()
			clientError(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body",
				fmt.Sprintf("an import body is at most %d bytes; the rows before the limit may be imported: see the operation", im.maxBody))
			return
		}
		if rerr != nil {
			cancel() // the client went away: the operation ends FAILED at its last checkpoint
			return
		}
	}
	op, err := stream.CloseAndRecv()
	if err != nil {
		writeError(ctx, im.rest, nil, w, r, err)
		return
	}
	writeProto(w, http.StatusOK, op)
}

// drain reads the rest of a body the import will not use (up to the import limit) before the
// answer. Otherwise the server closes the connection with the client still sending: the unread
// bytes make the kernel reset it, and a client that had not read the answer yet (a busy machine)
// loses it and sees "unexpected EOF" instead of why the import ended.
func drain(body io.Reader) { _, _ = io.Copy(io.Discard, body) }

// serveOperations answers GET /v1/operations/{service}.{id}, POST ...:cancel and GET
// /v1/operations (every importing service's, newest first).
func (im *imports) serveOperations(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/v1/operations")
	rest = strings.TrimPrefix(rest, "/")
	name, verb, _ := strings.Cut(rest, ":")
	template := "/v1/operations/{name}"
	switch {
	case rest == "":
		template = "/v1/operations"
	case verb != "":
		template += ":" + verb
	}
	trace.SpanFromContext(r.Context()).SetName(r.Method + " " + template)
	want := http.MethodGet
	if verb == "cancel" {
		want = http.MethodPost
	}
	if verb != "" && verb != "cancel" {
		refuse(w, r, http.StatusNotFound, codes.NotFound, reasonMethodNotFound, "method", "/v1/operations/{name} has no method :"+verb+"; its methods: :cancel")
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		refuse(w, r, http.StatusMethodNotAllowed, codes.Unimplemented, reasonMethodNotAllowed, "method", r.Method+" is not allowed; allowed: "+want)
		return
	}
	if ifMatchHeader(r) != "" {
		refuseIfMatch(w, r, template)
		return
	}
	// These routes are served here, not by the generated handlers the conventions check: the
	// same strict reading of the name and the query (gRPC refuses to send invalid UTF-8).
	if !validText(name) {
		clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, "name", "must be valid UTF-8 without NUL")
		return
	}
	for param, values := range r.URL.Query() {
		if slices.ContainsFunc(values, func(v string) bool { return !validText(v) }) {
			clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, param, "must be valid UTF-8 without NUL")
			return
		}
	}
	ctx, err := runtime.AnnotateContext(r.Context(), im.rest, r, "/google.longrunning.Operations/"+r.Method, runtime.WithHTTPPathPattern(template))
	if err != nil {
		writeError(r.Context(), im.rest, nil, w, r, err)
		return
	}
	if rest == "" {
		im.list(ctx, w, r)
		return
	}
	service, _, _ := strings.Cut(name, ".")
	client, ok := im.ops[service]
	if !ok {
		refuse(w, r, http.StatusNotFound, codes.NotFound, "OPERATION_NOT_FOUND", "name", "no such operation") // as the services answer one they do not have
		return
	}
	var op *longrunningpb.Operation
	if verb == "cancel" {
		op, err = client.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: "operations/" + name})
	} else {
		op, err = client.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: "operations/" + name})
	}
	if err != nil {
		writeError(ctx, im.rest, nil, w, r, err)
		return
	}
	writeProto(w, http.StatusOK, op)
}

// opsServices are the services whose operations GET /v1/operations merges.
var opsServices = []string{"marketing", "sales", "product"}

// list merges the services' operations, newest first (by creation time, then id: the order of
// each service's list). A service's page token is a position in that order, bound to the tenant
// and a method name every service shares (operations.ListMethod), so one token continues all
// three lists. Each service is asked for a third of the page; the page ends on the newest last
// operation of a full service page (a service that has more): down to there every service has
// sent all it holds, and that service's token continues after it. So a page may hold fewer than
// pageSize (AIP-158), at least a third of it until the end. Under 3, each service is asked for
// one and the page is the newest pageSize of them: each is its service's full page and carries
// its token.
func (im *imports) list(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	req := &longrunningpb.ListOperationsRequest{Name: "operations"}
	for name, v := range r.URL.Query() {
		switch name {
		case "pageSize":
			n, err := strconv.ParseInt(v[0], 10, 32)
			if err != nil || n < 0 {
				clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, name, "must be a whole number, 0 or more")
				return
			}
			req.PageSize = int32(n)
		case "pageToken":
			req.PageToken = v[0]
		case "filter":
			req.Filter = v[0] // the services refuse one: no index serves it
		default:
			clientError(w, r, http.StatusBadRequest, codes.InvalidArgument, name, "the list takes pageSize, pageToken and filter")
			return
		}
	}
	size := pagesize.Of(req.PageSize)
	req.PageSize = int32(max(1, size/len(opsServices)))
	type listed struct {
		op    *longrunningpb.Operation
		at    int64  // creation time, ms
		id    string // the name's id
		token string // its service's next page token when it ends a full page
	}
	var all []listed
	var denied error
	served := 0
	for _, service := range opsServices {
		resp, err := im.ops[service].ListOperations(ctx, req)
		switch status.Code(err) {
		case codes.Unimplemented:
			continue // the service is not deployed here
		case codes.PermissionDenied:
			// A key may read one service's records and not another's: it sees the operations
			// of the services it may read, and a 403 only when it may read none.
			denied = err
			continue
		}
		if err != nil {
			writeError(ctx, im.rest, nil, w, r, err)
			return
		}
		served++
		for i, op := range resp.GetOperations() {
			meta := &typev1.ImportMetadata{}
			if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
				writeError(ctx, im.rest, nil, w, r, status.Error(codes.Internal, "an operation could not be read"))
				return
			}
			_, id, _ := strings.Cut(op.GetName(), ".")
			e := listed{op: op, at: meta.GetCreateTime().AsTime().UnixMilli(), id: id}
			if i == len(resp.GetOperations())-1 {
				e.token = resp.GetNextPageToken()
			}
			all = append(all, e)
		}
	}
	if served == 0 && denied != nil {
		writeError(ctx, im.rest, nil, w, r, denied)
		return
	}
	slices.SortFunc(all, func(a, b listed) int { return cmp.Or(cmp.Compare(b.at, a.at), strings.Compare(b.id, a.id)) })
	end := len(all)
	if i := slices.IndexFunc(all, func(e listed) bool { return e.token != "" }); i >= 0 {
		end = i + 1
	}
	end = min(end, size) // only under 3: see above
	out := &longrunningpb.ListOperationsResponse{Operations: make([]*longrunningpb.Operation, end)}
	for i, e := range all[:end] {
		out.Operations[i] = e.op
	}
	if end > 0 {
		out.NextPageToken = all[end-1].token
	}
	writeProto(w, http.StatusOK, out)
}

// protoJSON writes operations with their zero counters and empty lists (created: "0", errors: []):
// a client reading an import's metadata should not have to tell 0 from absent.
var protoJSON = protojson.MarshalOptions{EmitDefaultValues: true}

func writeProto(w http.ResponseWriter, code int, m proto.Message) {
	data, err := protoJSON.Marshal(m)
	if err != nil {
		http.Error(w, "cannot render the answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}
