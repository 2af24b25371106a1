package gateway

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/munnerz/goautoneg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// An export route streams a server-streaming Export RPC to the client as NDJSON (one record per
// line, the JSON of Get) or, with Accept: text/csv, as CSV: each stream message is written and
// flushed as it arrives, so memory stays bounded whatever the number of records. grpc-gateway's
// own handler for these routes would wrap every message in {"result": ...}.
type exportRoute struct {
	path, method string
	// record is an empty record, whose fields are the CSV columns.
	record proto.Message
	// open starts the stream; recv returns the records of the next message, io.EOF at the end.
	open func(ctx context.Context, filter string) (recv func() ([]proto.Message, error), header func() (metadata.MD, error), err error)
}

// exportRoutes are the six export routes over the backends.
func exportRoutes(b Backends) []exportRoute {
	m, s := marketingv1.NewMarketingServiceClient(b.Marketing), salesv1.NewSalesServiceClient(b.Sales)
	p, t := productv1.NewProductServiceClient(b.Product), supportv1.NewSupportServiceClient(b.Support)
	return []exportRoute{
		route("/v1/leads:export", marketingv1.MarketingService_ExportLeads_FullMethodName, &marketingv1.Lead{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[marketingv1.ExportLeadsResponse], error) {
				return m.ExportLeads(ctx, &marketingv1.ExportLeadsRequest{Filter: f})
			}, (*marketingv1.ExportLeadsResponse).GetLeads),
		route("/v1/accounts:export", salesv1.SalesService_ExportAccounts_FullMethodName, &salesv1.Account{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[salesv1.ExportAccountsResponse], error) {
				return s.ExportAccounts(ctx, &salesv1.ExportAccountsRequest{Filter: f})
			}, (*salesv1.ExportAccountsResponse).GetAccounts),
		route("/v1/contacts:export", salesv1.SalesService_ExportContacts_FullMethodName, &salesv1.Contact{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[salesv1.ExportContactsResponse], error) {
				return s.ExportContacts(ctx, &salesv1.ExportContactsRequest{Filter: f})
			}, (*salesv1.ExportContactsResponse).GetContacts),
		route("/v1/orders:export", salesv1.SalesService_ExportOrders_FullMethodName, &salesv1.Order{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[salesv1.ExportOrdersResponse], error) {
				return s.ExportOrders(ctx, &salesv1.ExportOrdersRequest{Filter: f})
			}, (*salesv1.ExportOrdersResponse).GetOrders),
		route("/v1/products:export", productv1.ProductService_ExportProducts_FullMethodName, &productv1.Product{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[productv1.ExportProductsResponse], error) {
				return p.ExportProducts(ctx, &productv1.ExportProductsRequest{Filter: f})
			}, (*productv1.ExportProductsResponse).GetProducts),
		route("/v1/tickets:export", supportv1.SupportService_ExportTickets_FullMethodName, &supportv1.Ticket{},
			func(ctx context.Context, f string) (grpc.ServerStreamingClient[supportv1.ExportTicketsResponse], error) {
				return t.ExportTickets(ctx, &supportv1.ExportTicketsRequest{Filter: f})
			}, (*supportv1.ExportTicketsResponse).GetTickets),
	}
}

// route adapts one typed export stream.
func route[Resp any, T proto.Message](path, method string, record proto.Message,
	call func(context.Context, string) (grpc.ServerStreamingClient[Resp], error), items func(*Resp) []T) exportRoute {
	return exportRoute{path: path, method: method, record: record,
		open: func(ctx context.Context, filter string) (func() ([]proto.Message, error), func() (metadata.MD, error), error) {
			stream, err := call(ctx, filter)
			if err != nil {
				return nil, nil, err
			}
			return func() ([]proto.Message, error) {
				msg, err := stream.Recv()
				if err != nil {
					return nil, err
				}
				out := make([]proto.Message, 0, len(items(msg)))
				for _, it := range items(msg) {
					out = append(out, it)
				}
				return out, nil
			}, stream.Header, nil
		}}
}

// serve answers one export request.
func (e exportRoute) serve(rest *runtime.ServeMux, w http.ResponseWriter, r *http.Request) {
	fail := func(ctx context.Context, err error) { writeError(ctx, rest, nil, w, r, err) }
	for name := range r.URL.Query() {
		if name != "filter" {
			fail(r.Context(), status.Errorf(codes.InvalidArgument, "unknown query parameter %q: an export takes filter", name))
			return
		}
	}
	ctx, err := runtime.AnnotateContext(r.Context(), rest, r, e.method, runtime.WithHTTPPathPattern(e.path))
	if err != nil {
		fail(r.Context(), err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out recordWriter = newNDJSON(w)
	format := exportFormat(r.Header.Get("Accept"))
	switch format {
	case "":
		refuse(w, r, http.StatusNotAcceptable, codes.InvalidArgument, "NOT_ACCEPTABLE", "Accept",
			"an export is application/x-ndjson (also sent for application/json and */*) or text/csv")
		return
	case "csv":
		out = newCSV(w, e.record)
	}
	// The export's audit event records what was read and in which form.
	ctx = metadata.AppendToOutgoingContext(ctx, events.ExportFormatKey, format)
	recv, header, err := e.open(ctx, r.URL.Query().Get("filter"))
	if err != nil {
		fail(ctx, err)
		return
	}
	// The first message decides the status: a refused export (scope, filter) is an error body.
	first, err := recv()
	if err != nil && !errors.Is(err, io.EOF) {
		if md, herr := header(); herr == nil {
			for _, v := range md.Get("retry-after") { // a refusal of the rate limiter
				w.Header().Set("Retry-After", v)
			}
		}
		fail(ctx, err)
		return
	}
	if md, err := header(); err == nil {
		if id := md.Get("x-request-id"); len(id) > 0 {
			w.Header().Set("X-Request-Id", id[0])
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	for records := first; ; {
		if err := out.write(records); err != nil {
			return // the client went away
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if records, err = recv(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			// The status line is gone: abort the response, so the client sees a cut transfer
			// rather than a complete-looking export.
			panic(http.ErrAbortHandler)
		}
	}
}

// exportFormat is the form the Accept header asks an export in (RFC 9110 negotiation, q-values
// and wildcards included): "csv", "ndjson" (also for JSON, which a line of NDJSON is, and when
// Accept is absent), or "" when it accepts neither.
func exportFormat(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "ndjson"
	}
	switch negotiate(accept, []string{"application/x-ndjson", "text/csv", "application/jsonl", "application/json"}) {
	case "":
		return ""
	case "text/csv":
		return "csv"
	}
	return "ndjson"
}

// negotiate picks the alternative the Accept header weighs highest, the first on a tie, or ""
// when it weighs every one 0. An alternative's weight is that of the most specific range that
// matches it (RFC 9110 12.5.1: "text/csv;q=0, */*" refuses CSV and takes the rest), which
// goautoneg.Negotiate does not do: it takes the first matching range, q=0 included.
func negotiate(accept string, alternatives []string) string {
	clauses := goautoneg.ParseAccept(accept)
	best, bestQ := "", 0.0
	for _, alt := range alternatives {
		typ, sub, _ := strings.Cut(alt, "/")
		q, specificity := 0.0, -1
		for _, c := range clauses {
			s := -1
			switch {
			case c.Type == typ && c.SubType == sub:
				s = 2
			case c.Type == typ && c.SubType == "*":
				s = 1
			case c.Type == "*" && c.SubType == "*":
				s = 0
			}
			if s > specificity {
				q, specificity = c.Q, s
			}
		}
		if q > bestQ {
			best, bestQ = alt, q
		}
	}
	return best
}

// recordWriter writes records in one output format; the first write sends the headers.
type recordWriter interface{ write([]proto.Message) error }

var exportJSON = protojson.MarshalOptions{}

type ndjson struct {
	w       http.ResponseWriter
	started bool
}

func newNDJSON(w http.ResponseWriter) *ndjson { return &ndjson{w: w} }

func (n *ndjson) write(records []proto.Message) error {
	if !n.started {
		n.w.Header().Set("Content-Type", "application/x-ndjson")
		n.started = true
	}
	var buf []byte
	for _, rec := range records {
		var err error
		if buf, err = exportJSON.MarshalAppend(buf, rec); err != nil {
			return err
		}
		buf = append(buf, '\n')
	}
	_, err := n.w.Write(buf)
	return err
}

// csvWriter writes one column per top-level field of the record (its JSON name), in declaration
// order: strings, numbers and enum names as they are in the JSON, lists of strings joined by ";"
// (importer.JoinList: a ";" or "\\" within an item escaped with a "\\"),
// messages (money, timestamps' RFC 3339 text aside) as compact JSON.
type csvWriter struct {
	w       http.ResponseWriter
	out     *csv.Writer
	columns []string
	// text marks the columns of text fields, whose values are guarded against spreadsheet
	// formulas (importer.GuardCell); numbers (an int64's JSON is a string too) and enums are not.
	text    []bool
	started bool
}

func newCSV(w http.ResponseWriter, record proto.Message) *csvWriter {
	fields := record.ProtoReflect().Descriptor().Fields()
	cols, text := make([]string, fields.Len()), make([]bool, fields.Len())
	for i := range fields.Len() {
		cols[i], text[i] = fields.Get(i).JSONName(), fields.Get(i).Kind() == protoreflect.StringKind
	}
	return &csvWriter{w: w, out: csv.NewWriter(w), columns: cols, text: text}
}

func (c *csvWriter) write(records []proto.Message) error {
	if !c.started {
		c.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		c.started = true
		if err := c.out.Write(c.columns); err != nil {
			return err
		}
	}
	row := make([]string, len(c.columns))
	for _, rec := range records {
		raw, err := exportJSON.Marshal(rec)
		if err != nil {
			return err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return err
		}
		for i, col := range c.columns {
			if row[i] = cell(fields[col]); c.text[i] {
				row[i] = importer.GuardCell(row[i])
			}
		}
		if err := c.out.Write(row); err != nil {
			return err
		}
	}
	c.out.Flush()
	return c.out.Error()
}

// cell is the CSV text of one JSON value.
func cell(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return importer.JoinList(list) // as an import reads it back: a tag may hold a ";"
	}
	return string(v)
}
