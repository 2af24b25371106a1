package gatewaytest

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/crmcycle/crm/pkg/importer"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Import posts a file to an import route, which must answer 200, and returns the finished
// operation and its metadata.
func (e *Edge) Import(t testing.TB, path, key, contentType string, body []byte) (*longrunningpb.Operation, *typev1.ImportMetadata) {
	t.Helper()
	r := e.DoWith(t, http.MethodPost, path, key, body, http.Header{"Content-Type": {contentType}})
	if r.Status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	return DecodeOperation(t, r.Body)
}

// DecodeOperation reads an import operation's JSON and its metadata.
func DecodeOperation(t testing.TB, body []byte) (*longrunningpb.Operation, *typev1.ImportMetadata) {
	t.Helper()
	op := &longrunningpb.Operation{}
	if err := protojson.Unmarshal(body, op); err != nil {
		t.Fatalf("operation %s: %v", body, err)
	}
	meta := &typev1.ImportMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	return op, meta
}

// ImportWant is what an import must report, computed independently of it: rows read, the counts,
// and the failed rows' errors in file order (line, field and reason; any message).
type ImportWant struct {
	Rows                      int
	Created, Updated, Skipped int
	Errors                    []*typev1.ImportRowError
}

// CheckImport compares a SUCCEEDED import's counts and kept errors with want.
func CheckImport(t testing.TB, what string, meta *typev1.ImportMetadata, want ImportWant) {
	t.Helper()
	if meta.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED || meta.GetRowsRead() != int64(want.Rows) ||
		meta.GetCreated() != int64(want.Created) || meta.GetUpdated() != int64(want.Updated) || meta.GetSkipped() != int64(want.Skipped) ||
		meta.GetFailed() != int64(len(want.Errors)) || meta.GetErrorCount() != int64(len(want.Errors)) {
		t.Fatalf("%s: state %v read %d created %d updated %d skipped %d failed %d errors %d; want SUCCEEDED %d %d %d %d %d",
			what, meta.GetState(), meta.GetRowsRead(), meta.GetCreated(), meta.GetUpdated(), meta.GetSkipped(), meta.GetFailed(),
			meta.GetErrorCount(), want.Rows, want.Created, want.Updated, want.Skipped, len(want.Errors))
	}
	kept := want.Errors[:min(len(want.Errors), importer.MaxErrors)]
	if len(meta.GetErrors()) != len(kept) {
		t.Fatalf("%s: %d row errors kept, want %d", what, len(meta.GetErrors()), len(kept))
	}
	for i, got := range meta.GetErrors() {
		w := kept[i]
		if got.GetLine() != w.GetLine() || got.GetField() != w.GetField() || got.GetReason() != w.GetReason() || got.GetMessage() == "" {
			t.Fatalf("%s: error %d = %v, want line %d field %q reason %s", what, i, got, w.GetLine(), w.GetField(), w.GetReason())
		}
	}
}

// GeneratedFile is a generated import CSV and, computed while writing it, what importing it must
// do.
type GeneratedFile struct {
	CSV []byte
	// Valid are the rows that make a record, by natural key.
	Valid map[string][]string
	// Errors are the rows that fail, in file order.
	Errors []*typev1.ImportRowError
	Rows   int
}

// Generate writes rows data rows under header: row(i) gives a valid row and its natural key;
// spoil makes 1 % of them fail (earlier are the keys of the valid rows so far, for duplicates)
// and says with which error.
func Generate(rows int, header string, row func(i int) (key string, cells []string),
	spoil func(i int, cells, earlier []string) ([]string, *typev1.ImportRowError)) GeneratedFile {
	f := GeneratedFile{Valid: map[string][]string{}, Rows: rows}
	var b bytes.Buffer
	b.WriteString(header + "\n")
	w := csv.NewWriter(&b)
	var keys []string
	for i := range rows {
		key, cells := row(i)
		if i%100 == 50 && len(keys) > 0 {
			spoiled, want := spoil(i, cells, keys)
			want.Line = int64(i + 2)
			f.Errors = append(f.Errors, want)
			cells = spoiled
		} else {
			keys = append(keys, key)
			f.Valid[key] = cells
		}
		_ = w.Write(cells)
	}
	w.Flush()
	f.CSV = b.Bytes()
	return f
}
