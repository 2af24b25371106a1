package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fileStream is the server side of an Import RPC carrying one file in chunks.
type fileStream struct {
	grpc.ServerStream
	ctx    context.Context
	chunks []*typev1.ImportChunk
	out    *longrunningpb.Operation
}

func (s *fileStream) Context() context.Context { return s.ctx }

func (s *fileStream) Recv() (*typev1.ImportChunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *fileStream) SendAndClose(op *longrunningpb.Operation) error { s.out = op; return nil }

// csvFile is a file of rows keys, a column "key", in chunks of 4 KiB.
func csvFile(keys []string) []*typev1.ImportChunk {
	data := []byte("key\n" + strings.Join(keys, "\n") + "\n")
	var chunks []*typev1.ImportChunk
	for len(data) > 0 {
		n := min(len(data), 4096)
		chunks = append(chunks, &typev1.ImportChunk{Data: data[:n]})
		data = data[n:]
	}
	return chunks
}

// watchedKind is a kind whose Apply holds each batch until told, and checks, while batches are
// being written, that the operation's checkpoint never covers a line of one not written yet.
type watchedKind struct {
	t       *testing.T
	ops     *operations.Store
	tenant  string
	op      func() string // the operation's name, once started
	release chan struct{} // one receive lets one batch's Apply return
	entered chan struct{} // a send each time a batch enters Apply
	fail    map[string]error

	mu       sync.Mutex
	writing  map[string]bool // the first key of each batch being written
	most     int             // batches written at once, at most
	lineOf   map[string]int64
	applied  []string
	problems []string
}

func (k *watchedKind) kind() Kind[string] {
	return Kind[string]{
		Name: "items", Columns: []string{"key"}, Required: []string{"key"},
		Parse: func(r Row) (string, *typev1.ImportRowError) {
			if r.Value("key") == "bad" {
				return "", RowError("key", ReasonInvalidValue, "bad")
			}
			return r.Value("key"), nil
		},
		Key: func(s string) string { return s }, KeyName: "key",
		Apply: k.apply,
	}
}

// checkpoint is the operation's checkpoint line now.
func (k *watchedKind) checkpoint(ctx context.Context) int64 {
	op, err := k.ops.Get(ctx, k.tenant, k.op())
	if err != nil {
		k.t.Errorf("get operation: %v", err)
		return 0
	}
	meta := &typev1.ImportMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		k.t.Errorf("metadata: %v", err)
	}
	return meta.GetCheckpointLine()
}

// check records a problem when the checkpoint covers the first line of a batch being written.
func (k *watchedKind) check(ctx context.Context) {
	cp := k.checkpoint(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	for first := range k.writing {
		if cp >= k.lineOf[first] {
			k.problems = append(k.problems, fmt.Sprintf("checkpoint %d covers line %d, still being written", cp, k.lineOf[first]))
		}
	}
}

func (k *watchedKind) apply(ctx context.Context, _ string, items []string) ([]Outcome, error) {
	first := items[0]
	k.mu.Lock()
	k.writing[first] = true
	k.most = max(k.most, len(k.writing))
	k.mu.Unlock()
	k.check(ctx)
	k.entered <- struct{}{}
	<-k.release
	k.check(ctx)
	k.mu.Lock()
	delete(k.writing, first)
	err := k.fail[first]
	if err == nil {
		k.applied = append(k.applied, items...)
	}
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(items))
	for i := range out {
		out[i] = Outcome{Result: Created}
	}
	return out, nil
}

type importRun struct {
	k    *watchedKind
	done chan struct{}
	err  error
	meta *typev1.ImportMetadata
}

// testRunner is a Runner of the service "test" on the package's redis-server, and a tenant of the
// test's own.
func testRunner(t *testing.T) (*Runner, string) {
	t.Helper()
	rdb := redistest.Client(t)
	space, err := keyspace.Open(context.Background(), rdb, 4)
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Redis: rdb, Keys: space, Ops: operations.New(rdb, space, "test", time.Now), Service: "test"}, redistest.Tenant(t)
}

// startImport imports a file of keys (key i on line i+2) through Serve, inFlight batches at once.
func startImport(t *testing.T, keys []string, fail map[string]error, inFlight int) *importRun {
	t.Helper()
	ctx := context.Background()
	runner, tenant := testRunner(t)
	runner.InFlight = inFlight
	ops := runner.Ops
	var name string
	var nameMu sync.Mutex
	k := &watchedKind{t: t, ops: ops, tenant: tenant, release: make(chan struct{}), entered: make(chan struct{}, 64), fail: fail,
		writing: map[string]bool{}, lineOf: map[string]int64{}}
	for i, key := range keys {
		if _, seen := k.lineOf[key]; !seen {
			k.lineOf[key] = int64(i + 2)
		}
	}
	// The operation is the only one of its tenant: its name is read from the list once started.
	k.op = func() string {
		nameMu.Lock()
		defer nameMu.Unlock()
		if name == "" {
			list, err := ops.List(ctx, tenant, page.Request{Limit: 1})
			if err != nil || len(list.Items) != 1 {
				t.Errorf("operations of the tenant: %v, %v", list.Items, err)
				return ""
			}
			name = list.Items[0].GetName()
		}
		return name
	}
	stream := &fileStream{ctx: auth.WithPrincipal(ctx, auth.Principal{TenantID: tenant}), chunks: csvFile(keys)}
	run := &importRun{k: k, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = Serve(runner, k.kind(), stream)
		if stream.out != nil {
			run.meta = &typev1.ImportMetadata{}
			if err := stream.out.GetMetadata().UnmarshalTo(run.meta); err != nil {
				t.Error(err)
			}
		}
	}()
	return run
}

// releaseAll lets every batch's Apply return, one at a time, until the import ends.
func (r *importRun) releaseAll(t *testing.T) {
	t.Helper()
	for {
		select {
		case r.k.release <- struct{}{}:
		case <-r.done:
			if r.err != nil {
				t.Fatalf("import: %v", r.err)
			}
			return
		}
	}
}

func keysOf(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%06d", i)
	}
	return keys
}

func TestBatchesAreWrittenSideBySideAndCheckpointedInOrder(t *testing.T) {
	for _, c := range []struct {
		name           string
		runner, expect int
	}{{"default", 0, DefaultInFlight}, {"one at a time", 1, 1}, {"two", 2, 2}} {
		t.Run(c.name, func(t *testing.T) { testSideBySide(t, c.runner, c.expect) })
	}
}

// testSideBySide imports with Runner.InFlight set to inFlight, and expects want batches in Apply
// at once.
func testSideBySide(t *testing.T, inFlight, want int) {
	keys := keysOf(BatchSize*(want+3) + 7)
	keys[3*BatchSize+1] = keys[1] // a duplicate of a row in the first batch
	keys[2*BatchSize+5] = "bad"   // a row that does not parse
	run := startImport(t, keys, nil, inFlight)
	// Every batch waits in Apply until released: the runner must have want of them in Apply at
	// once before it waits for the first.
	deadline := time.After(30 * time.Second)
	for n := 0; n < want; n++ {
		select {
		case <-run.k.entered:
		case <-deadline:
			t.Fatalf("%d batches written at once, want %d", n, want)
		}
	}
	run.releaseAll(t)

	if run.k.most != want {
		t.Errorf("at most %d batches written at once, want %d", run.k.most, want)
	}
	if len(run.k.problems) > 0 {
		t.Errorf("checkpoints ahead of the writes: %v", run.k.problems)
	}
	// An independent count: every key once, in its first line, the bad row and the duplicate failed.
	distinct := map[string]bool{}
	for _, key := range keys {
		if key != "bad" {
			distinct[key] = true
		}
	}
	got := map[string]int{}
	for _, key := range run.k.applied {
		got[key]++
	}
	for key := range distinct {
		if got[key] != 1 {
			t.Errorf("key %s written %d times, want once", key, got[key])
		}
	}
	m := run.meta
	if m.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED || m.GetCreated() != int64(len(distinct)) ||
		m.GetFailed() != 2 || m.GetRowsRead() != int64(len(keys)) || m.GetCheckpointLine() != int64(len(keys)+1) {
		t.Errorf("metadata %v: want SUCCEEDED, %d created, 2 failed, %d read, checkpoint %d", m, len(distinct), len(keys), len(keys)+1)
	}
	// Row errors in file order: the bad row, then the duplicate.
	if errs := m.GetErrors(); len(errs) != 2 || errs[0].GetLine() != int64(2*BatchSize+7) || errs[1].GetLine() != int64(3*BatchSize+3) ||
		errs[1].GetReason() != ReasonDuplicate {
		t.Errorf("row errors %v", errs)
	}
}

func TestAFailedBatchEndsTheImportAtItsFirstLine(t *testing.T) {
	keys := keysOf(BatchSize * (DefaultInFlight + 3))
	failing := 2 // the third batch; the batches after it may be written already
	run := startImport(t, keys, map[string]error{keys[failing*BatchSize]: apierr.New(apierr.Unavailable, "STORE_DOWN", "store down")}, 0)
	run.releaseAll(t)

	m := run.meta
	if m.GetState() != typev1.ImportState_IMPORT_STATE_FAILED {
		t.Fatalf("state %v, want FAILED", m.GetState())
	}
	// Counted and checkpointed: the batches before the failed one, no more.
	if m.GetCreated() != int64(failing*BatchSize) || m.GetCheckpointLine() != int64(failing*BatchSize+1) ||
		m.GetResumeFromLine() != int64(failing*BatchSize+2) {
		t.Errorf("created %d, checkpoint %d, resume from %d; want %d, %d, %d", m.GetCreated(), m.GetCheckpointLine(),
			m.GetResumeFromLine(), failing*BatchSize, failing*BatchSize+1, failing*BatchSize+2)
	}
	// Nothing is still being written once the operation has ended.
	run.k.mu.Lock()
	defer run.k.mu.Unlock()
	if len(run.k.writing) != 0 {
		t.Errorf("%d batches still in Apply after the import ended", len(run.k.writing))
	}
	if len(run.k.problems) > 0 {
		t.Errorf("checkpoints ahead of the writes: %v", run.k.problems)
	}
}

// recordingKind is a kind of two columns, key and note, that creates every row and keeps them.
type recordingKind struct {
	mu   sync.Mutex
	rows map[string]string // note by key
}

func (k *recordingKind) kind() Kind[[2]string] {
	return Kind[[2]string]{
		Name: "items", Columns: []string{"key", "note"}, Required: []string{"key"},
		Parse: func(r Row) ([2]string, *typev1.ImportRowError) {
			return [2]string{r.Value("key"), r.Value("note")}, nil
		},
		Key: func(v [2]string) string { return v[0] }, KeyName: "key",
		Apply: func(_ context.Context, _ string, items [][2]string) ([]Outcome, error) {
			k.mu.Lock()
			defer k.mu.Unlock()
			out := make([]Outcome, len(items))
			for i, it := range items {
				k.rows[it[0]] = it[1]
				out[i] = Outcome{Result: Created}
			}
			return out, nil
		},
	}
}

// importBody imports data in one format through Serve with a recordingKind, and returns the
// finished operation's metadata and the rows the kind was given.
func importBody(t *testing.T, format typev1.ImportFormat, data []byte) (*typev1.ImportMetadata, map[string]string) {
	t.Helper()
	ctx := context.Background()
	runner, tenant := testRunner(t)
	k := &recordingKind{rows: map[string]string{}}
	var chunks []*typev1.ImportChunk
	for len(data) > 0 { // small chunks: a row or a quoted value spans several
		n := min(len(data), 7)
		chunks = append(chunks, &typev1.ImportChunk{Data: data[:n]})
		data = data[n:]
	}
	chunks[0].Format = format
	stream := &fileStream{ctx: auth.WithPrincipal(ctx, auth.Principal{TenantID: tenant}), chunks: chunks}
	if err := Serve(runner, k.kind(), stream); err != nil {
		t.Fatalf("import: %v", err)
	}
	meta := &typev1.ImportMetadata{}
	if err := stream.out.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	return meta, k.rows
}

// TestNDJSONRowErrorsAndBOM: a BOM before the first object is dropped; a line that is not a JSON
// object is a MALFORMED_ROW saying what it is instead, in the file's terms (column numbers counted
// on the line as written), never the decoder's Go types.
func TestNDJSONRowErrorsAndBOM(t *testing.T) {
	lines := []struct{ text, problem string }{
		{"\ufeff" + `{"key":"a","note":"first"}`, ""},
		{`["key","b"]`, "the line is an array, not a JSON object"},
		{`"b"`, "the line is a string, not a JSON object"},
		{`12`, "the line is a number, not a JSON object"},
		{`true`, "the line is true or false, not a JSON object"},
		{`null`, "the line is JSON null, not an object"},
		{`  {"key":x}`, `invalid JSON at column 10: unexpected 'x'`},
		{`{"note":"é","key" "c"}`, `invalid JSON at column 19: unexpected '"'`},
		{`{"key":"c"`, "invalid JSON: the line ends before the object does"},
		{`{"key":"d"} {"key":"e"}`, `invalid JSON at column 13: unexpected '{'`},
		{`{"key":"f","note":"last"}`, ""},
	}
	var body strings.Builder
	for _, l := range lines {
		body.WriteString(l.text + "\n")
	}
	meta, rows := importBody(t, typev1.ImportFormat_IMPORT_FORMAT_NDJSON, []byte(body.String()))
	var want []string
	for i, l := range lines {
		if l.problem != "" {
			want = append(want, fmt.Sprintf("%d %s %s", i+1, ReasonMalformed, l.problem))
		}
	}
	var got []string
	for _, e := range meta.GetErrors() {
		got = append(got, fmt.Sprintf("%d %s %s", e.GetLine(), e.GetReason(), e.GetMessage()))
		if strings.Contains(e.GetMessage(), "Go") || strings.Contains(e.GetMessage(), "json.") {
			t.Errorf("line %d: the message names Go internals: %s", e.GetLine(), e.GetMessage())
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("row errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rows) != 2 || rows["a"] != "first" || rows["f"] != "last" || meta.GetCreated() != 2 || meta.GetFailed() != int64(len(want)) {
		t.Errorf("rows %v, metadata %v: want a and f created, %d failed", rows, meta, len(want))
	}
}

// csvPiece is rows of a generated CSV: their text, the rows they import (note by key) and the
// row error of their first line, if any.
type csvPiece struct {
	text string
	rows map[string]string
	err  string // the message, {first} and {last} the first and last lines it took after its own
}

// TestCSVQuotes: a quoted value may hold newlines, commas and doubled quotes; a quote inside an
// unquoted value is read as itself (5" screen); a quoted value that is not closed is its row's
// MALFORMED_ROW, at the line it opens on, saying which lines it took (to the end of the file, or
// up to a quote followed by text), and the rows after those import. The expected rows and errors
// are stated piece by piece, the line numbers counted while writing the file.
func TestCSVQuotes(t *testing.T) {
	plain := func(from, n int) csvPiece {
		p := csvPiece{rows: map[string]string{}}
		for i := range n {
			key := fmt.Sprintf("r%d", from+i)
			p.text += key + ",R" + key + "\n"
			p.rows[key] = "R" + key
		}
		return p
	}
	swallowed := func(p csvPiece) csvPiece { p.rows = nil; return p }
	cut := plain(100, 30)
	cut.text += "x1,say \"hi\" twice\n" // the quote before hi ends the open value and is followed by text
	files := map[string][]csvPiece{
		"never closed": {
			plain(0, 3),
			{text: "uqa,\"abc\n", err: "a quoted value opens on this line and is never closed: it runs to the end of the file, so lines {first} to {last} are not imported"},
			swallowed(plain(10, 30)),
		},
		"never closed, last line": {
			plain(0, 2),
			{text: "uqa,\"abc\n", err: "a quoted value opens on this line and is never closed"},
		},
		"cut by a later quote": {
			plain(0, 2),
			{text: "uqa,\"abc\n", err: "a quoted value opens on this line and is not closed: it runs on to line {last}, where a quote at column 8 is followed by text, not a comma or the end of a line; lines {first} to {last} are not imported"},
			swallowed(cut),
			plain(200, 5),
		},
		"quoted newlines and bare quotes": {
			plain(0, 2),
			{text: "m1,\"multi\nline, with a comma\nand \"\"quotes\"\"\"\n", rows: map[string]string{"m1": "multi\nline, with a comma\nand \"quotes\""}},
			plain(10, 2),
			{text: "m2,\"closed\n\n\n\nmany lines later\"\n", rows: map[string]string{"m2": "closed\n\n\n\nmany lines later"}},
			{text: "b1,5\" screen\n", rows: map[string]string{"b1": `5" screen`}},
			{text: "b\"2,a \"b\" c\r\n", rows: map[string]string{`b"2`: `a "b" c`}},
			{text: "b3,27\"\n", rows: map[string]string{"b3": `27"`}},
			{text: "b4,\"quoted \"\"ok\"\"\"\n", rows: map[string]string{"b4": `quoted "ok"`}},
			{text: "q1,\"abc\"def\n", err: "the quote at column 8 is followed by text: a quote inside a quoted value is written twice (\"\")"},
			plain(20, 3),
		},
	}
	for name, pieces := range files {
		t.Run(name, func(t *testing.T) {
			body := "key,note\n"
			line := 2
			want := map[string]string{}
			var wantErrs []string
			for _, p := range pieces {
				n := strings.Count(p.text, "\n")
				if p.err != "" {
					// A swallowing piece's last line is the next piece's last.
					last := line + n - 1
					for _, q := range pieces {
						if q.rows == nil && q.err == "" {
							last += strings.Count(q.text, "\n")
						}
					}
					msg := strings.NewReplacer("{first}", fmt.Sprint(line+1), "{last}", fmt.Sprint(last)).Replace(p.err)
					wantErrs = append(wantErrs, fmt.Sprintf("%d %s %s", line, ReasonMalformed, msg))
				}
				maps.Copy(want, p.rows)
				body += p.text
				line += n
			}
			meta, rows := importBody(t, typev1.ImportFormat_IMPORT_FORMAT_CSV, []byte(body))
			var got []string
			for _, e := range meta.GetErrors() {
				got = append(got, fmt.Sprintf("%d %s %s", e.GetLine(), e.GetReason(), e.GetMessage()))
			}
			if strings.Join(got, "\n") != strings.Join(wantErrs, "\n") {
				t.Errorf("row errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantErrs, "\n"))
			}
			if !maps.Equal(rows, want) {
				t.Errorf("rows %q\nwant %q", rows, want)
			}
			if meta.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED || meta.GetCreated() != int64(len(want)) || meta.GetFailed() != int64(len(wantErrs)) {
				t.Errorf("metadata %v: want SUCCEEDED, %d created, %d failed", meta, len(want), len(wantErrs))
			}
		})
	}
}

// record is a stored record of memStore.
type record struct {
	id, etag, val string
	updated       time.Time
}

// memWrite is a planned write: rec to store under key, over the etag prev ("" for a new record).
type memWrite struct {
	key, prev string
	rec       record
}

// memStore is an upsert kind's store in memory, with a script of failures: cut makes each Commit
// call, in turn, fail in transit after applying some of its writes (or none, those landing after
// the next Plan's reads); planFails fails the next Plans.
type memStore struct {
	db        map[string]record
	ids       int
	clock     time.Time
	cut       []func(writes []*memWrite) (applied, late []*memWrite)
	planFails int
	late      []*memWrite
}

var errInTransit = errors.New("read tcp: i/o timeout")

func (m *memStore) apply(w *memWrite) error {
	if m.db[w.key].etag != w.prev {
		return errLost
	}
	m.db[w.key] = w.rec
	return nil
}

var errLost = errors.New("lost a race")

// upsert upserts rows (val by key) through Upsert.
func (m *memStore) upsert(rows [][2]string) ([]Outcome, error) {
	return Upsert(context.Background(), len(rows), Rounds[memWrite]{
		KeyField: "key",
		Lost:     func(err error) bool { return err == errLost },
		Plan: func(_ context.Context, todo []int) ([]Step[memWrite], error) {
			if m.planFails > 0 {
				m.planFails--
				return nil, errInTransit
			}
			steps := make([]Step[memWrite], len(todo))
			for j, i := range todo {
				key, val := rows[i][0], rows[i][1]
				prev, ok := m.db[key]
				m.clock = m.clock.Add(time.Millisecond)
				s := Step[memWrite]{Row: i, Key: key}
				switch {
				case ok && prev.val == val:
					s.Outcome, s.ID, s.Etag, s.Updated = Outcome{Result: Skipped}, prev.id, prev.etag, prev.updated
				case ok:
					n, _ := strconv.Atoi(prev.etag)
					next := record{id: prev.id, etag: strconv.Itoa(n + 1), val: val, updated: m.clock}
					s.Write, s.Planned, s.ID, s.Etag, s.Updated = &memWrite{key, prev.etag, next}, Updated, next.id, next.etag, next.updated
				default:
					m.ids++
					next := record{id: fmt.Sprint("id", m.ids), etag: "1", val: val, updated: m.clock}
					s.Write, s.Planned, s.ID, s.Etag, s.Updated = &memWrite{key, "", next}, Created, next.id, next.etag, next.updated
				}
				steps[j] = s
			}
			for _, w := range m.late { // after the reads: they did not see these
				_ = m.apply(w)
			}
			m.late = nil
			return steps, nil
		},
		Commit: func(_ context.Context, writes []*memWrite) ([]error, error) {
			if len(m.cut) > 0 {
				applied, late := m.cut[0](writes)
				m.cut = m.cut[1:]
				for _, w := range applied {
					_ = m.apply(w)
				}
				m.late = append(m.late, late...)
				return nil, errInTransit
			}
			errs := make([]error, len(writes))
			for i, w := range writes {
				errs[i] = m.apply(w)
			}
			return errs, nil
		},
	})
}

// TestUpsertCountsItsOwnWritesCutInTransit: a row whose write was applied though its round trip
// failed counts as what it was planned as, whether it landed before the next failures (reads
// failing too) or after a later round's reads (that round planned the row again, and was cut as
// well); a row another import updated identically while this import's own update was lost is
// skipped, not counted as updated by both. Counted against the rows and the store's records.
func TestUpsertCountsItsOwnWritesCutInTransit(t *testing.T) {
	var rows [][2]string
	for i := range 40 {
		rows = append(rows, [2]string{fmt.Sprint("k", i), fmt.Sprint("v", i)})
	}
	half := func(writes []*memWrite) ([]*memWrite, []*memWrite) { return writes[:len(writes)/2], nil }
	later := func(writes []*memWrite) ([]*memWrite, []*memWrite) { return nil, writes }
	for _, c := range []struct {
		name      string
		cut       []func([]*memWrite) ([]*memWrite, []*memWrite)
		planFails int
	}{
		{"applied, then the reads fail", []func([]*memWrite) ([]*memWrite, []*memWrite){half}, TransitAttempts - 2},
		{"applied after the next reads", []func([]*memWrite) ([]*memWrite, []*memWrite){later, later}, 0},
		{"half applied, half after the next reads", []func([]*memWrite) ([]*memWrite, []*memWrite){
			func(w []*memWrite) ([]*memWrite, []*memWrite) { return w[:10], w[10:20] }, later}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &memStore{db: map[string]record{}, cut: c.cut, planFails: c.planFails}
			out, err := m.upsert(rows)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range out {
				if o.Result != Created {
					t.Errorf("row %d: %v, want created", i, o)
				}
			}
			for _, r := range rows {
				if rec := m.db[r[0]]; rec.val != r[1] || rec.etag != "1" {
					t.Errorf("%s stored as %v", r[0], rec)
				}
			}
		})
	}

	t.Run("an identical update by another import", func(t *testing.T) {
		m := &memStore{db: map[string]record{"k": {id: "id0", etag: "1", val: "old"}}}
		// The update is lost in transit; meanwhile another import applies the same one.
		m.cut = append(m.cut, func(writes []*memWrite) ([]*memWrite, []*memWrite) {
			theirs := *writes[0]
			theirs.rec.updated = theirs.rec.updated.Add(time.Microsecond)
			return []*memWrite{&theirs}, nil
		})
		out, err := m.upsert([][2]string{{"k", "new"}})
		if err != nil || len(out) != 1 || out[0].Result != Skipped {
			t.Errorf("outcome %v, %v: want skipped, the other import's update", out, err)
		}
		if rec := m.db["k"]; rec.val != "new" || rec.etag != "2" {
			t.Errorf("stored %v", rec)
		}
	})
}

// TestCSVWithoutRows: a body with no header is refused as invalid, and a header alone imports
// nothing; neither panics (the reader asks for a record's line only when it has one).
func TestCSVWithoutRows(t *testing.T) {
	ctx := context.Background()
	runner, tenant := testRunner(t)
	k := &recordingKind{rows: map[string]string{}}
	stream := &fileStream{ctx: auth.WithPrincipal(ctx, auth.Principal{TenantID: tenant}), chunks: []*typev1.ImportChunk{{}}}
	if e, ok := apierr.As(Serve(runner, k.kind(), stream)); !ok || e.Kind != apierr.InvalidArgument {
		t.Errorf("empty body: %v, want invalid", e)
	}
	// A header's errors name its columns as written, less the BOM an editor put before them.
	bom := &fileStream{ctx: auth.WithPrincipal(ctx, auth.Principal{TenantID: tenant}), chunks: []*typev1.ImportChunk{{Data: []byte("\ufeffnote,other\nx,y\n")}}}
	if e, ok := apierr.As(Serve(runner, k.kind(), bom)); !ok || e.Kind != apierr.InvalidArgument || strings.Contains(e.Error(), "\ufeff") ||
		!strings.Contains(e.Error(), "(columns: note,other)") {
		t.Errorf("a BOM file without the key column: %v, want invalid naming the columns without the BOM", e)
	}
	meta, rows := importBody(t, typev1.ImportFormat_IMPORT_FORMAT_CSV, []byte("key,note\n"))
	if len(rows) != 0 || meta.GetRowsRead() != 0 || meta.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED {
		t.Errorf("header alone: %v, rows %v", meta, rows)
	}
}
