package rpc_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// leadFile is a generated lead CSV and what importing it must do, computed while writing it.
type leadFile struct {
	csv []byte
	// valid are the rows that make a lead, by normalized e-mail: email, givenName, familyName,
	// company, channel, tags (";"-joined), as the export writes them.
	valid map[string][6]string
	// errors are the rows that fail, in file order.
	errors []*typev1.ImportRowError
	rows   int
}

var channels = []string{"CHANNEL_WEB", "CHANNEL_EMAIL", "CHANNEL_EVENT", "CHANNEL_ADS"}

// genLeads writes rows data rows, 1 % of them malformed in five ways (bad e-mail, missing column,
// bad enum, an e-mail an earlier row had in other case, invalid UTF-8), and computes the outcome.
func genLeads(rows int, seed uint64) leadFile {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := leadFile{valid: map[string][6]string{}, rows: rows}
	var b bytes.Buffer
	b.WriteString("email,givenName,familyName,company,channel,tags\n")
	var emails []string
	for i := range rows {
		line := int64(i + 2)
		email := fmt.Sprintf("person.%d.%d@example.com", seed, i)
		given, family := fmt.Sprintf("Given%d", i), fmt.Sprintf("Fämily%d", rng.IntN(50))
		company, channel := fmt.Sprintf("Company %d", rng.IntN(100)), channels[rng.IntN(len(channels))]
		tags := ""
		if i%3 == 0 {
			tags = "vip;q" + fmt.Sprint(i%4)
		}
		row := []string{email, given, family, company, channel, tags}
		if i%100 == 50 && len(emails) > 0 {
			switch (i / 100) % 5 {
			case 0:
				row[0] = "not-an-email-" + fmt.Sprint(i)
				f.errors = append(f.errors, &typev1.ImportRowError{Line: line, Field: "email", Reason: importer.ReasonInvalidEmail})
			case 1:
				row = row[:4]
				f.errors = append(f.errors, &typev1.ImportRowError{Line: line, Field: "channel", Reason: importer.ReasonMissingColumn})
			case 2:
				row[4] = "CHANNEL_PIGEON"
				f.errors = append(f.errors, &typev1.ImportRowError{Line: line, Field: "channel", Reason: importer.ReasonInvalidEnum})
			case 3:
				row[0] = strings.ToUpper(emails[rng.IntN(len(emails))])
				f.errors = append(f.errors, &typev1.ImportRowError{Line: line, Field: "", Reason: importer.ReasonDuplicate})
			case 4:
				row[1] = "Bad\xff\xfeName"
				f.errors = append(f.errors, &typev1.ImportRowError{Line: line, Field: "givenName", Reason: importer.ReasonInvalidUTF8})
			}
		} else {
			emails = append(emails, email)
			f.valid[email] = [6]string{email, given, family, company, channel, tags}
		}
		b.WriteString(strings.Join(row, ",") + "\n")
	}
	f.csv = b.Bytes()
	return f
}

// checkImport compares an import's counts and errors with the file's computed outcome.
func checkImport(t *testing.T, what string, meta *typev1.ImportMetadata, f leadFile, created, updated, skipped int) {
	t.Helper()
	gatewaytest.CheckImport(t, what, meta, gatewaytest.ImportWant{Rows: f.rows, Created: created, Updated: updated, Skipped: skipped, Errors: f.errors})
}

// exportedLeads reads an NDJSON export as the imported columns, by e-mail.
func exportedLeads(t *testing.T, sys *system, key, filter string) map[string][6]string {
	t.Helper()
	r := sys.Do(t, http.MethodGet, "/v1/leads:export?filter="+url.QueryEscape(filter), key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("export: %d %s", r.Status, r.Body)
	}
	out := map[string][6]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lead := &marketingv1.Lead{}
		if err := protojson.Unmarshal(sc.Bytes(), lead); err != nil {
			t.Fatal(err)
		}
		out[lead.GetEmail()] = [6]string{lead.GetEmail(), lead.GetGivenName(), lead.GetFamilyName(), lead.GetCompany(),
			lead.GetChannel().String(), strings.Join(lead.GetTags(), ";")}
	}
	return out
}

// TestImportLeadsCSV: a generated CSV (10,000 rows; 100,000 under the long flag) with 1 % malformed
// rows imports with counts and row errors equal to the ones computed while generating it; every
// imported person is a SUSPECT; the export of what was imported equals the file's valid rows, all
// of them and under a filter; the same file again changes nothing (every valid row skipped, no
// event, no key).
func TestImportLeadsCSV(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read", "marketing.export")
	f := genLeads(servicetest.Size(10_000, 100_000), 1)

	op, meta := sys.Import(t, "/v1/leads:import", key, "text/csv", f.csv)
	if !op.GetDone() || op.GetError() != nil || !strings.HasPrefix(op.GetName(), "operations/marketing.") {
		t.Fatalf("operation %v", op)
	}
	checkImport(t, "first import", meta, f, len(f.valid), 0, 0)

	got := exportedLeads(t, sys, key, "")
	if len(got) != len(f.valid) {
		t.Fatalf("export has %d leads, want %d", len(got), len(f.valid))
	}
	for email, want := range f.valid {
		if got[email] != want {
			t.Fatalf("exported %q = %v, want %v", email, got[email], want)
		}
	}
	web := exportedLeads(t, sys, key, `channel = CHANNEL_WEB`)
	wantWeb := 0
	for email, want := range f.valid {
		if want[4] == "CHANNEL_WEB" {
			wantWeb++
			if web[email] != want {
				t.Fatalf("filtered export %q = %v, want %v", email, web[email], want)
			}
		}
	}
	if len(web) != wantWeb {
		t.Fatalf("filtered export has %d leads, want %d", len(web), wantWeb)
	}

	client, ctx := sys.marketing(key)
	lead, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "person.1.7@example.com"`})
	if err != nil || len(lead.GetLeads()) != 1 {
		t.Fatalf("lookup of an imported lead: %v %v", lead, err)
	}
	lc, err := client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: lead.GetLeads()[0].GetCustomerId()})
	// It entered as a SUSPECT (later reactions to its events may move it on).
	if h := lc.GetLifecycle().GetHistory(); err != nil || len(h) == 0 || h[0].GetTo() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
		t.Fatalf("lifecycle of an imported person: %v %v", lc, err)
	}

	// (The stream is not compared: the consumers' reactions to the first import's events, such as
	// lifecycle moves, append to it meanwhile.)
	before := sys.OKBytes(t, http.MethodGet, "/v1/leads:export", key, nil)
	_, again := sys.Import(t, "/v1/leads:import", key, "text/csv", f.csv)
	checkImport(t, "second import", again, f, 0, 0, len(f.valid))
	if after := sys.OKBytes(t, http.MethodGet, "/v1/leads:export", key, nil); !bytes.Equal(after, before) {
		t.Fatal("the same file again changed leads")
	}
}

// TestImportLeadsUpdatesAndNDJSON: NDJSON rows with a column mapping update the leads they name
// (the row's names, company and tags) and create the others; the fixed row of a failed import
// imports on its own.
func TestImportLeadsUpdatesAndNDJSON(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read", "marketing.export")
	sys.captureLead(t, key, `{"email":"ada@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}`)

	body := `{"mail":"ADA@example.com","familyName":"Lovelace","tags":["math"]}
{"mail":"bob@example.com","givenName":"Bob","channel":"event"}

{"mail":"carol@example","givenName":"Carol"}
`
	path := "/v1/leads:import?columnMapping=" + url.QueryEscape("mail=email")
	_, meta := sys.Import(t, path, key, "application/x-ndjson", []byte(body))
	if meta.GetCreated() != 1 || meta.GetUpdated() != 1 || meta.GetFailed() != 1 || meta.GetRowsRead() != 3 {
		t.Fatalf("import: %v", meta)
	}
	if e := meta.GetErrors(); len(e) != 1 || e[0].GetLine() != 4 || e[0].GetField() != "email" || e[0].GetReason() != importer.ReasonInvalidEmail {
		t.Fatalf("errors: %v", e)
	}
	leads := exportedLeads(t, sys, key, "")
	if leads["ada@example.com"] != [6]string{"ada@example.com", "Ada", "Lovelace", "", "CHANNEL_WEB", "math"} ||
		leads["bob@example.com"] != [6]string{"bob@example.com", "Bob", "", "", "CHANNEL_EVENT", ""} {
		t.Fatalf("leads: %v", leads)
	}
	// The failed row, fixed, alone.
	_, meta = sys.Import(t, path, key, "application/x-ndjson", []byte(`{"mail":"carol@example.com","givenName":"Carol"}`+"\n"))
	if meta.GetCreated() != 1 || meta.GetFailed() != 0 {
		t.Fatalf("fixed row: %v", meta)
	}
}

// TestImportRefusals: a wrong content type is 415, an unknown query parameter, a mapping to an
// unknown column, a header without the e-mail column and a header with it twice (written twice
// or mapped) are 400, a read-only key is 403, and
// none of them starts an operation or writes a lead.
func TestImportRefusals(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.write", "marketing.read")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	keys, events := sys.footprint(t, tenant)
	csvBody := []byte("email\nada@example.com\n")
	for _, c := range []struct {
		path, key, contentType string
		body                   []byte
		status                 int
	}{
		{"/v1/leads:import", key, "application/json", []byte(`{"email":"ada@example.com"}`), http.StatusUnsupportedMediaType},
		{"/v1/leads:import?limit=3", key, "text/csv", csvBody, http.StatusBadRequest},
		{"/v1/leads:import?columnMapping=mail%3Demail2", key, "text/csv", csvBody, http.StatusBadRequest},
		{"/v1/leads:import", key, "text/csv", []byte("mail,name\nada@example.com,Ada\n"), http.StatusBadRequest},
		{"/v1/leads:import", key, "text/csv", nil, http.StatusBadRequest},
		// Two columns for one: written twice, or a second mapped onto one the file has.
		{"/v1/leads:import", key, "text/csv", []byte("email,email,givenName\nada@example.com,bob@example.com,Ada\n"), http.StatusBadRequest},
		{"/v1/leads:import?columnMapping=mail%3Demail", key, "text/csv", []byte("email,mail\nada@example.com,bob@example.com\n"), http.StatusBadRequest},
		{"/v1/leads:import", reader, "text/csv", csvBody, http.StatusForbidden},
		{"/v1/leads:import", "", "text/csv", csvBody, http.StatusUnauthorized},
	} {
		r := sys.DoWith(t, http.MethodPost, c.path, c.key, c.body, http.Header{"Content-Type": {c.contentType}})
		if r.Status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.path, c.contentType, r.Status, r.Body, c.status)
		}
		if bytes.HasPrefix(c.body, []byte("email,")) && (r.ErrorStatus(t) != "INVALID_ARGUMENT" ||
			!strings.Contains(string(r.Body), `line 1: columns 1 (\"email\") and 2`) || !strings.Contains(string(r.Body), `both the \"email\" column`)) {
			t.Errorf("%s %q: %s, want INVALID_ARGUMENT naming line 1 and the email column twice", c.path, c.body, r.Body)
		}
	}
	if r := sys.Do(t, http.MethodGet, "/v1/operations", key, nil); r.Status != http.StatusOK || strings.Contains(string(r.Body), "operations/") {
		t.Fatalf("operations after refusals: %d %s", r.Status, r.Body)
	}
	if k, e := sys.footprint(t, tenant); k != keys || e != events {
		t.Fatalf("refused imports wrote: %d keys %d events, before %d %d", k, e, keys, events)
	}
}

// TestImportOperationsAreTheTenants: another tenant's key finds neither the operation nor its
// cancel, and lists none of it; the owner gets, lists and (once done) cancels it unchanged,
// writing no event.
func TestImportOperationsAreTheTenants(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.write", "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.write", "marketing.read")
	op, _ := sys.Import(t, "/v1/leads:import", key, "text/csv", []byte("email\nada@example.com\n"))
	path := "/v1/" + op.GetName()
	for _, c := range []struct{ method, path string }{{http.MethodGet, path}, {http.MethodPost, path + ":cancel"}} {
		if r := sys.Do(t, c.method, c.path, stranger, nil); r.Status != http.StatusNotFound {
			t.Errorf("stranger %s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if r := sys.Do(t, http.MethodGet, "/v1/operations", stranger, nil); strings.Contains(string(r.Body), op.GetName()) {
		t.Fatalf("stranger's list: %s", r.Body)
	}
	got, _ := gatewaytest.DecodeOperation(t, sys.OKBytes(t, http.MethodGet, path, key, nil))
	if !proto.Equal(got, op) {
		t.Fatalf("GET %s = %v, want %v", path, got, op)
	}
	_, events := sys.footprint(t, tenant)
	cancelled, _ := gatewaytest.DecodeOperation(t, sys.OKBytes(t, http.MethodPost, path+":cancel", key, nil))
	if !proto.Equal(cancelled, op) {
		t.Fatalf("cancel of a done import = %v, want it unchanged", cancelled)
	}
	if _, after := sys.footprint(t, tenant); after != events {
		t.Fatalf("cancel of a done import wrote %d events, want none (the audit log would record a cancel that did not happen)", after-events)
	}
	var list struct {
		Operations []json.RawMessage `json:"operations"`
	}
	if err := json.Unmarshal(sys.OKBytes(t, http.MethodGet, "/v1/operations", key, nil), &list); err != nil || len(list.Operations) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/operations/marketing.nope", key, nil); r.Status != http.StatusNotFound {
		t.Fatalf("unknown operation: %d", r.Status)
	}
}

// TestExportsAreCharged: an export (a server-streaming call) takes one token of its key like any
// call, so a key over its limit gets 429 with Retry-After from GET /v1/leads:export too.
func TestExportsAreCharged(t *testing.T) {
	sys := startSystem(t, func(o *servicetest.Options) { o.RateLimit = &ratelimit.Config{PerSecond: 1, Burst: 3} })
	_, key := sys.NewKey(t, "", "marketing.export")
	var r gatewaytest.Response
	calls := 0
	for calls = 1; calls <= 13; calls++ {
		if r = sys.Do(t, http.MethodGet, "/v1/leads:export", key, nil); r.Status != http.StatusOK {
			break
		}
	}
	if r.Status != http.StatusTooManyRequests || r.ErrorStatus(t) != "RESOURCE_EXHAUSTED" {
		t.Fatalf("export %d over a burst of 3: %d %s, want 429 RESOURCE_EXHAUSTED", calls, r.Status, r.Body)
	}
	if calls < 4 {
		t.Fatalf("refused at export %d, within the burst of 3", calls)
	}
	if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
	}
}

// TestImportCancel: CancelOperation during an import stops it at its next checkpoint, done with
// CANCELLED; the rows before it are written (as many leads as it says it created), none after.
func TestImportCancel(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read", "marketing.export")
	client, ctx := sys.marketing(key)
	stream, err := client.ImportLeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := func(from, to int) []byte {
		var b bytes.Buffer
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "cancel.%d@example.com\n", i)
		}
		return b.Bytes()
	}
	if err := stream.Send(&typev1.ImportChunk{Format: typev1.ImportFormat_IMPORT_FORMAT_CSV, Data: append([]byte("email\n"), rows(0, 600)...)}); err != nil {
		t.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil || len(md.Get(importer.OperationHeader)) != 1 {
		t.Fatalf("header %v %v", md, err)
	}
	name := md.Get(importer.OperationHeader)[0]
	if _, err := client.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	for from := 600; from < 6000; from += 600 {
		if err := stream.Send(&typev1.ImportChunk{Data: rows(from, from+600)}); err != nil {
			break // the import ended: its answer says how
		}
	}
	op, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	meta := &typev1.ImportMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	if !op.GetDone() || codes.Code(op.GetError().GetCode()) != codes.Canceled || meta.GetState() != typev1.ImportState_IMPORT_STATE_CANCELLED ||
		meta.GetCreated() == 0 || meta.GetCreated() >= 6000 {
		t.Fatalf("cancelled import: %v", op)
	}
	if got := exportedLeads(t, sys, key, ""); len(got) != int(meta.GetCreated()) {
		t.Fatalf("%d leads after a cancelled import that created %d", len(got), meta.GetCreated())
	}
	if again, err := client.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name}); err != nil || !proto.Equal(again, op) {
		t.Fatalf("GetOperation after the end: %v %v", again, err)
	}
}

// TestImportOversize: a body over the gateway's import limit is 413 before any row is read.
func TestImportOversize(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}})
	sys := &system{Edge: gatewaytest.Start(t, suite, gateway.Config{MaxImportBytes: 4 << 10})}
	tenant, key := sys.NewKey(t, "", "marketing.write", "marketing.read")
	keys, events := sys.footprint(t, tenant)
	f := genLeads(200, 9)
	r := sys.DoWith(t, http.MethodPost, "/v1/leads:import", key, f.csv, http.Header{"Content-Type": {"text/csv"}})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d bytes over a 4 KiB limit: %d %s", len(f.csv), r.Status, r.Body)
	}
	if k, e := sys.footprint(t, tenant); k != keys || e != events {
		t.Fatalf("an oversize import wrote: %d keys %d events, before %d %d", k, e, keys, events)
	}
}

// TestImportOversizeChunked: a REST body sent without a length (chunked) that goes on past the
// gateway's import limit is 413, and its operation ends FAILED with INVALID_ARGUMENT naming the
// body, as a gRPC stream over the limit does: not as an interrupted import to resume.
func TestImportOversizeChunked(t *testing.T) {
	const limit = 48 << 10
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{marketingService}})
	sys := &system{Edge: gatewaytest.Start(t, suite, gateway.Config{MaxImportBytes: limit})}
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read")
	f := genLeads(1500, 12)
	if len(f.csv) < 2*limit {
		t.Fatalf("the file is %d bytes: make it larger than twice the limit", len(f.csv))
	}
	req, err := http.NewRequest(http.MethodPost, sys.URL+"/v1/leads:import", io.MultiReader(bytes.NewReader(f.csv))) // no length: chunked
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), fmt.Sprint(limit)) {
		t.Fatalf("a chunked %d-byte body over a %d-byte limit: %d %s, want 413 naming the limit", len(f.csv), limit, resp.StatusCode, body)
	}
	ops, _ := sys.OK(t, http.MethodGet, "/v1/operations", key, "")["operations"].([]any)
	if len(ops) != 1 {
		t.Fatalf("%d operations, want the one import's", len(ops))
	}
	op := ops[0].(map[string]any)
	opErr, _ := op["error"].(map[string]any)
	if op["done"] != true || opErr["code"] != float64(codes.InvalidArgument) || !strings.Contains(fmt.Sprint(opErr["message"]), fmt.Sprint(limit)) ||
		op["metadata"].(map[string]any)["state"] != "IMPORT_STATE_FAILED" {
		t.Fatalf("the operation of a chunked body over the limit: %v, want FAILED with INVALID_ARGUMENT naming the limit", op)
	}
}

// TestImportOversizeOverGRPC: a gRPC client's stream is held to the same limit as a REST body
// (--max-import-bytes): the call is refused with INVALID_ARGUMENT naming the body, as REST's 413
// is, and the operation ends FAILED with that error, counting only the batches written before
// the limit (each of their leads is there, nothing of the rows after).
func TestImportOversizeOverGRPC(t *testing.T) {
	const limit = 48 << 10
	sys := startSystem(t, func(o *servicetest.Options) { o.ImportMaxBytes = limit })
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read", "marketing.export")
	client, ctx := sys.marketing(key)
	f := genLeads(1500, 11)
	if len(f.csv) < 2*limit {
		t.Fatalf("the file is %d bytes: make it larger than twice the limit", len(f.csv))
	}
	stream, err := client.ImportLeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for data, first := f.csv, true; len(data) > 0; first = false {
		n := min(len(data), 4<<10)
		msg := &typev1.ImportChunk{Data: data[:n]}
		if first {
			msg.Format = typev1.ImportFormat_IMPORT_FORMAT_CSV
		}
		if stream.Send(msg) != nil {
			break // the service ended the import: its answer says why
		}
		data = data[n:]
	}
	_, err = stream.CloseAndRecv()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), fmt.Sprint(limit)) {
		t.Fatalf("a %d-byte stream over a %d-byte limit: %v, want InvalidArgument naming the limit", len(f.csv), limit, err)
	}
	md, err := stream.Header()
	if err != nil || len(md.Get(importer.OperationHeader)) != 1 {
		t.Fatalf("header %v %v", md, err)
	}
	op, err := client.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: md.Get(importer.OperationHeader)[0]})
	if err != nil {
		t.Fatal(err)
	}
	meta := &typev1.ImportMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	if !op.GetDone() || codes.Code(op.GetError().GetCode()) != codes.InvalidArgument || meta.GetState() != typev1.ImportState_IMPORT_STATE_FAILED ||
		meta.GetRowsRead() != importer.BatchSize || meta.GetCheckpointLine() != importer.BatchSize+1 || meta.GetResumeFromLine() != importer.BatchSize+2 {
		t.Fatalf("the operation of an oversize stream: %v", op)
	}
	if got := exportedLeads(t, sys, key, ""); len(got) != int(meta.GetCreated()) || meta.GetCreated()+meta.GetFailed() != importer.BatchSize {
		t.Fatalf("%d leads for an operation that counts %d created, %d failed of %d read", len(got), meta.GetCreated(), meta.GetFailed(), meta.GetRowsRead())
	}
}

// TestExportedTagsImportBack: tags and text that a CSV export must escape (a ";" in a tag, a
// backslash, spaces) or guard against spreadsheet formulas (=, +, -, @: a cell behind an
// apostrophe) import back exactly, from CSV and from NDJSON; the CSV holds no cell a spreadsheet
// would run.
func TestExportedTagsImportBack(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read", "marketing.export")
	tags := []string{"a;b", `back\slash`, `ends\`, " edge ", `C:\dir`, "plain", "-x", "@y", "'=quoted"}
	names := map[string]string{"givenName": `=HYPERLINK("http://evil.example","x")`, "familyName": "+cmd|' /C calc'!A0", "company": "-2+3"}
	in := map[string]any{"email": "tags@example.com", "tags": tags}
	for k, v := range names {
		in[k] = v
	}
	lead, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	sys.captureLead(t, key, string(lead))
	for _, format := range []struct{ accept, contentType string }{{"text/csv", "text/csv"}, {"", "application/x-ndjson"}} {
		exported := sys.DoWith(t, http.MethodGet, "/v1/leads:export", key, nil, http.Header{"Accept": {format.accept}})
		if exported.Status != http.StatusOK {
			t.Fatalf("export %q: %d %s", format.accept, exported.Status, exported.Body)
		}
		if format.contentType == "text/csv" {
			rows, err := csv.NewReader(bytes.NewReader(exported.Body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				for _, cell := range row {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("CSV cell %q would run as a formula", cell)
					}
				}
			}
		}
		_, other := sys.NewKey(t, "", "marketing.write", "marketing.read")
		if _, meta := sys.Import(t, "/v1/leads:import", other, format.contentType, exported.Body); meta.GetCreated() != 1 {
			t.Fatalf("%s import of the export: %v", format.contentType, meta)
		}
		client, ctx := sys.marketing(other)
		got, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{})
		if err != nil || len(got.GetLeads()) != 1 || !slices.Equal(got.GetLeads()[0].GetTags(), tags) {
			t.Fatalf("%s: tags %q (%v), want %q; the export:\n%s", format.contentType, got.GetLeads(), err, tags, exported.Body)
		}
		l := got.GetLeads()[0]
		if l.GetGivenName() != names["givenName"] || l.GetFamilyName() != names["familyName"] || l.GetCompany() != names["company"] {
			t.Errorf("%s: names %q %q %q, want %v", format.contentType, l.GetGivenName(), l.GetFamilyName(), l.GetCompany(), names)
		}
	}
}

// TestImportAnswerShowsZeroCounts: an operation's metadata over REST carries every counter, 0
// included, and an empty error list, so a client need not tell 0 from absent.
func TestImportAnswerShowsZeroCounts(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.write", "marketing.read")
	r := sys.DoWith(t, http.MethodPost, "/v1/leads:import", key, []byte("email\nzero@example.com\n"), http.Header{"Content-Type": {"text/csv"}})
	meta, _ := r.JSON(t)["metadata"].(map[string]any)
	for field, want := range map[string]any{"created": "1", "updated": "0", "skipped": "0", "failed": "0", "errorCount": "0"} {
		if meta[field] != want {
			t.Errorf("metadata.%s = %v, want %v: %s", field, meta[field], want, r.Body)
		}
	}
	if errs, ok := meta["errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("metadata.errors = %v, want []", meta["errors"])
	}
}
