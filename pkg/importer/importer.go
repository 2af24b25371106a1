// Package importer runs a file import as a long-running operation: it reads a CSV or NDJSON file
// from a client stream a chunk at a time, parses each row into a record of one kind, drops rows
// whose natural key an earlier row of the file had, hands the rest to the kind in batches (its
// upserts: many rows per Redis round trip, each row atomic), and checkpoints the operation's
// progress after every batch. Memory is bounded by the batch, whatever the file's size: the keys
// seen are kept in Redis, not in the process.
package importer

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/pagesize"
	"github.com/crmcycle/crm/pkg/pagetoken"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// BatchSize is how many rows one batch hands to the kind: one round trip for the keys, a few for
// the kind's reads, one pipeline for the writes.
const BatchSize = 500

// MaxErrors is how many row errors an operation keeps; it counts them all.
const MaxErrors = 1000

// OperationHeader is the response header that names the operation as soon as the import starts.
const OperationHeader = "x-operation-name"

// The reasons of row errors.
const (
	ReasonInvalidEmail  = "INVALID_EMAIL"
	ReasonMissingColumn = "MISSING_COLUMN"
	ReasonInvalidEnum   = "INVALID_ENUM"
	ReasonDuplicate     = "DUPLICATE_IN_FILE"
	ReasonInvalidUTF8   = "INVALID_UTF8"
	ReasonInvalidValue  = "INVALID_VALUE"
	ReasonMalformed     = "MALFORMED_ROW"
	ReasonConflict      = "CONFLICT"
)

// Row is one data row of the file, by documented column.
type Row struct {
	Line   int64
	values map[string]string
}

// Value is the row's value in a documented column, trimmed ("" when absent).
func (r Row) Value(col string) string { return strings.TrimSpace(r.values[col]) }

// List is the row's value in a list column (tags): SplitList of the text as the file has it.
func (r Row) List(col string) []string { return SplitList(r.values[col]) }

// Has reports whether the row has the column at all.
func (r Row) Has(col string) bool {
	_, ok := r.values[col]
	return ok
}

// RowError is a row that is not written.
func RowError(field, reason, message string) *typev1.ImportRowError {
	return &typev1.ImportRowError{Field: field, Reason: reason, Message: message}
}

// Result is what became of a row.
type Result int

// The results.
const (
	Failed Result = iota
	Created
	Updated
	Skipped
)

// Outcome is one row's result, and its error when it failed.
type Outcome struct {
	Result Result
	Err    *typev1.ImportRowError
}

// Kind is what a service imports.
type Kind[T any] struct {
	// Name is the kind's plural ("leads").
	Name string
	// Columns are the documented columns; Required those every file must have.
	Columns, Required []string
	// Parse makes a record of a row, or says what is wrong with it.
	Parse func(Row) (T, *typev1.ImportRowError)
	// Key is a record's natural key (the normalized e-mail, the domain, the SKU); KeyName says
	// what it is ("e-mail").
	Key     func(T) string
	KeyName string
	// Apply upserts a batch of records with distinct keys, returning each one's outcome. An error
	// means the store failed (TransitAttempts times, if in transit): the batch's rows are not
	// counted, the import stops.
	Apply func(ctx context.Context, tenant string, items []T) ([]Outcome, error)
	// Needs are scopes the caller's key must hold besides the import's own, because Apply looks
	// the rows up in another service with it (contacts: marketing.read). Serve checks them before
	// the operation starts: a key without them could never import a row.
	Needs []string
}

// Runner runs imports for one service.
type Runner struct {
	Redis redis.UniversalClient
	Keys  *keyspace.Space
	Ops   *operations.Store
	// Tokens signs ListOperations' page tokens.
	Tokens *pagetoken.Codec
	// Service names the keys of the seen set.
	Service string
	// Logger logs why an import stopped early.
	Logger *slog.Logger
	// Audit records each cancel, as the event Cancelled ("<service>.operation.cancelled"), in the
	// tenant's event history: the audit log shows who stopped which import.
	Audit     events.Recorder
	Cancelled eventv1.Type[*eventv1.OperationCancelled]
	// InFlight is how many batches an import writes at once (0: DefaultInFlight). More is faster
	// up to Redis' one core, and makes live calls wait longer behind the import's pipelines.
	InFlight int
	// MaxBytes bounds the file a stream carries (0: no bound), as the gateway bounds a REST body:
	// a gRPC client is held to the same --max-import-bytes.
	MaxBytes int64
	// Idempotency keeps the imports' Idempotency-Keys (nil: a store with the defaults on Redis and
	// Keys, the one the unary calls' interceptor keeps theirs in).
	Idempotency *idempotency.Store
}

func (r *Runner) idempotency() *idempotency.Store {
	if r.Idempotency == nil {
		return idempotency.New(r.Redis, r.Keys, idempotency.Config{}, otel.GetMeterProvider())
	}
	return r.Idempotency
}

// Stream is the server side of an Import RPC.
type Stream = grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]

// Serve runs one import RPC: it reads the options and the header, starts the operation (naming it
// in the response header at once), imports the rows, and answers the finished operation.
//
// With an idempotency-key, the request is the method, the options of the first message and the
// file's bytes. The first call with the key imports; once it has received the whole file, its
// operation is the key's result for 24 h. A later call with the key imports nothing: it reads its
// file only to hash it, then answers that operation as it is now (running or done), or
// IDEMPOTENCY_KEY_REUSED when its options (at once) or its file (at its end) differ. A call that
// comes while the first is still receiving its file waits for it. A first call that ends before
// it received the whole file (the client went away, a refusal, a failure, a cancel) releases the
// key: nothing records what its file was, and importing it again is safe (rows upsert).
func Serve[T any](r *Runner, kind Kind[T], stream Stream) error {
	ctx := stream.Context()
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return err
	}
	if err := kind.allowed(ctx); err != nil {
		return err
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return apierr.Invalid("body", "the file is empty")
	}
	if err != nil {
		return err
	}
	options := proto.CloneOf(first)
	options.Data = nil
	method, _ := grpc.Method(ctx)
	claim, err := r.idempotency().ClaimStream(ctx, method, options)
	if err != nil {
		return err
	}
	if claim != nil && !claim.Owner {
		return r.replay(stream, tenant, first, claim)
	}
	defer claim.End(ctx) // releases the key unless the whole file was received
	src := &chunkReader{stream: stream, buf: first.GetData(), max: r.MaxBytes, read: int64(len(first.GetData()))}
	if claim != nil {
		src.sum = sha256.New()
		src.sum.Write(first.GetData())
	}
	rows, err := newRows(first, src, kind)
	if err != nil {
		return err
	}
	meta := &typev1.ImportMetadata{Kind: kind.Name}
	op, err := r.Ops.Start(ctx, tenant, meta)
	if err != nil {
		return err
	}
	_ = grpc.SendHeader(ctx, metadata.Pairs(OperationHeader, op.Name()))
	if claim != nil {
		src.whenWhole(func() {
			if err := claim.Complete(ctx, hex.EncodeToString(src.sum.Sum(nil)), op.Name()); err != nil && r.Logger != nil {
				// The key is released: a retry imports again, which upserts the same rows.
				r.Logger.WarnContext(ctx, "import: idempotency key not recorded", "operation", op.Name(), "error", err)
			}
		})
	}
	run := &run[T]{runner: r, kind: kind, tenant: tenant, op: op, meta: meta,
		seen: r.Keys.Scope(r.Service, tenant).Key("import-seen", op.ID()), resumeFrom: first.GetResumeFromLine()}
	err = run.all(ctx, rows)
	var refusal *apierr.Error // the operation's error, when it is not an interruption
	switch {
	case errors.Is(err, errCancelled):
		meta.State = typev1.ImportState_IMPORT_STATE_CANCELLED
	case err != nil:
		meta.State, meta.ResumeFromLine = typev1.ImportState_IMPORT_STATE_FAILED, meta.GetCheckpointLine()+1
		// A refusal of the key (by another service the rows are looked up in), or of a file over
		// the size limit, is the operation's error: sending the same file again with the same key
		// cannot help, so it must not read as an interruption.
		if e, ok := apierr.As(err); ok && (e.Kind == apierr.PermissionDenied || errors.Is(err, errTooLarge)) {
			refusal = e
		}
		if r.Logger != nil {
			r.Logger.WarnContext(ctx, "import stopped", "operation", op.Name(), "checkpoint_line", meta.GetCheckpointLine(), "error", err)
		}
	default:
		meta.State = typev1.ImportState_IMPORT_STATE_SUCCEEDED
	}
	// UNLINK frees the seen set off Redis' main thread: a DEL of a 100 MB file's keys (1.7 million
	// fields) blocks every client for seconds, long enough for this import's own last writes to
	// time out (measured by BenchmarkImportMemory in services/sales/rpc).
	r.Redis.Unlink(context.WithoutCancel(ctx), run.seen)
	// The outcome must be recorded even on a busy store: a few tries, the rows being written.
	var out *longrunningpb.Operation
	var ferr error
	for range 3 {
		if ferr = op.Finish(ctx, meta, refusal); ferr == nil {
			if out, ferr = r.Ops.Get(context.WithoutCancel(ctx), tenant, op.Name()); ferr == nil {
				break
			}
		}
	}
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	if errors.Is(err, errTooLarge) {
		return err // as the gateway answers a body over the limit (413 INVALID_ARGUMENT)
	}
	return stream.SendAndClose(out)
}

var errCancelled = errors.New("importer: cancelled")

// replay answers a call whose idempotency key another call holds: it reads the file (bounded as
// an import's) only to hash it, and answers the holder's operation if the files are the same.
func (r *Runner) replay(stream Stream, tenant string, first *typev1.ImportChunk, claim *idempotency.StreamClaim) error {
	ctx := stream.Context()
	sum := sha256.New()
	sum.Write(first.GetData())
	read := int64(len(first.GetData()))
	for {
		if r.MaxBytes > 0 && read > r.MaxBytes {
			return tooLarge(r.MaxBytes)
		}
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if limit := msg.GetOverLimitBytes(); limit > 0 {
			return tooLarge(limit)
		}
		sum.Write(msg.GetData())
		read += int64(len(msg.GetData()))
	}
	name, err := claim.Await(ctx, hex.EncodeToString(sum.Sum(nil)))
	if err != nil {
		return err
	}
	op, err := r.Ops.Get(ctx, tenant, name)
	if err != nil {
		return err
	}
	_ = grpc.SendHeader(ctx, metadata.Pairs(OperationHeader, name))
	return stream.SendAndClose(op)
}

// allowed refuses, before anything starts, a caller whose key lacks a scope the kind Needs.
func (k Kind[T]) allowed(ctx context.Context) error {
	p, _ := auth.FromContext(ctx)
	for _, scope := range k.Needs {
		if !p.Allows(scope) {
			return apierr.New(apierr.PermissionDenied, auth.ErrMissingScope.Reason, fmt.Sprintf(
				"importing %s looks each row up with the API key's own rights: the key needs the %s scope", k.Name, scope)).
				With("scope", scope)
		}
	}
	return nil
}

type run[T any] struct {
	runner     *Runner
	kind       Kind[T]
	tenant     string
	op         *operations.Running
	meta       *typev1.ImportMetadata
	seen       string
	resumeFrom int64
}

type pending[T any] struct {
	line int64
	item T
	key  string
	err  *typev1.ImportRowError // a row that failed to parse
	// replay: a row before resume_from_line, read only to know its key.
	replay bool
}

// DefaultInFlight is how many batches an import writes at once unless Runner.InFlight says. The
// kind's reads and writes of one batch keep Redis busy while crm plans the next and crm busy while
// Redis runs them, so on one batch at a time each waited for the other. Batches hold distinct keys (the seen set drops a key's later
// rows), and the kinds' upserts already take a concurrent write of the same record (a live
// capture) as a contention to retry. Keys are claimed, and batches counted and checkpointed, in
// file order: a checkpoint never covers a row not yet written.
const DefaultInFlight = 4

// all imports every row, up to the runner's InFlight batches at a time.
func (r *run[T]) all(ctx context.Context, rows *rowReader) error {
	inFlight := r.runner.InFlight
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	var writing []*step[T] // in file order
	// finishOldest counts and checkpoints the oldest batch once it is written. After a failure the
	// batches still being written are waited for (nothing writes after the operation ends) but
	// not counted: the import resumes from the failed batch's first line.
	var failed error
	finishOldest := func() {
		st := writing[0]
		writing = writing[1:]
		<-st.done
		if failed == nil {
			failed = r.finish(ctx, st)
		} else if errors.Is(failed, errCancelled) && st.err == nil {
			// Cancelled: a batch already being written is still counted, as its rows are there.
			_ = r.finish(ctx, st)
		}
	}
	defer func() {
		for len(writing) > 0 {
			finishOldest()
		}
	}()
	send := func(batch []pending[T], last int64) error {
		st, err := r.plan(ctx, batch, last)
		if err != nil {
			return err
		}
		go func() {
			defer close(st.done)
			if len(st.apply) > 0 {
				st.outcomes, st.err = r.kind.Apply(ctx, r.tenant, st.apply)
			}
		}()
		writing = append(writing, st)
		// Wait for the oldest when inFlight are being written; finish those already written.
		for len(writing) > 0 && (len(writing) >= inFlight || isDone(writing[0].done)) {
			finishOldest()
			if failed != nil {
				return failed
			}
		}
		return nil
	}
	batch := make([]pending[T], 0, BatchSize)
	var last int64
	for {
		row, rerr, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		last = row.Line
		replay := row.Line < r.resumeFrom
		switch {
		case rerr != nil:
			if !replay {
				batch = append(batch, pending[T]{line: row.Line, err: rerr})
			}
		default:
			item, perr := r.kind.Parse(row)
			switch {
			case perr == nil:
				batch = append(batch, pending[T]{line: row.Line, item: item, key: r.kind.Key(item), replay: replay})
			case !replay:
				batch = append(batch, pending[T]{line: row.Line, err: perr})
			}
		}
		if len(batch) == BatchSize {
			if err := send(batch, last); err != nil {
				return err
			}
			batch = make([]pending[T], 0, BatchSize)
		}
	}
	if err := send(batch, last); err != nil {
		return err
	}
	for len(writing) > 0 && failed == nil {
		finishOldest()
	}
	return failed
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// step is one batch on its way: planned in file order, written beside the next, finished in file
// order.
type step[T any] struct {
	batch []pending[T]
	last  int64
	// errs are the rows dropped as duplicates of an earlier line; apply and lines the rows to
	// write and their lines.
	errs     map[int64]*typev1.ImportRowError
	apply    []T
	lines    []int64
	done     chan struct{}
	outcomes []Outcome
	err      error
}

// plan drops the rows whose key an earlier row had (claiming the batch's keys in the seen set).
func (r *run[T]) plan(ctx context.Context, batch []pending[T], last int64) (*step[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keyed := make([]pending[T], 0, len(batch))
	for _, p := range batch {
		if p.err == nil {
			keyed = append(keyed, p)
		}
	}
	firsts, err := r.firstLines(ctx, keyed)
	if err != nil {
		return nil, err
	}
	st := &step[T]{batch: batch, last: last, errs: make(map[int64]*typev1.ImportRowError),
		apply: make([]T, 0, len(keyed)), lines: make([]int64, 0, len(keyed)), done: make(chan struct{})}
	for i, p := range keyed {
		switch {
		case p.replay:
		case firsts[i] != p.line:
			st.errs[p.line] = RowError("", ReasonDuplicate, fmt.Sprintf("the same %s as line %d", r.kind.KeyName, firsts[i]))
		default:
			st.apply, st.lines = append(st.apply, p.item), append(st.lines, p.line)
		}
	}
	return st, nil
}

// finish counts a written batch, its row errors in file order, and checkpoints.
func (r *run[T]) finish(ctx context.Context, st *step[T]) error {
	if st.err != nil {
		return st.err
	}
	for i, o := range st.outcomes {
		switch o.Result {
		case Created:
			r.meta.Created++
		case Updated:
			r.meta.Updated++
		case Skipped:
			r.meta.Skipped++
		default:
			st.errs[st.lines[i]] = o.Err
		}
	}
	for _, p := range st.batch {
		// Rows are counted read with their batch, so that an import that stops counts only the
		// rows of batches it finished.
		if !p.replay {
			r.meta.RowsRead++
		}
		if p.err != nil {
			r.fail(p.line, p.err)
		} else if e := st.errs[p.line]; e != nil {
			r.fail(p.line, e)
		}
	}
	r.meta.CheckpointLine = max(st.last, r.meta.GetCheckpointLine())
	cancelled, err := r.op.Checkpoint(ctx, r.meta)
	if err != nil {
		return err
	}
	if cancelled {
		return errCancelled
	}
	return nil
}

// TransitAttempts bounds the round trips of a batch that may fail in transit (a timeout on a busy
// store) before the batch fails, the import with it. The kind retries them (Upsert, marketing's
// Import), not the runner: a write whose reply was lost may have been applied, and only the kind
// knows which it sent, so that the row it finds so written counts as created or updated by this
// import rather than as skipped (a runner's fresh Apply counted it skipped).
const TransitAttempts = 6

// firstLines records each key's first line in the import's seen set and returns the first line
// of each row's key: one script call per batch (as a pipeline of HSETNX and HGET per row, it cost
// Redis two commands a row, each read, run and answered on its own).
func (r *run[T]) firstLines(ctx context.Context, batch []pending[T]) ([]int64, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+2*len(batch))
	args = append(args, int64(seenTTL.Seconds()))
	for _, b := range batch {
		args = append(args, b.key, b.line)
	}
	lines, err := firstLineScript.Run(ctx, r.runner.Redis, []string{r.seen}, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(lines) != len(batch) {
		return nil, fmt.Errorf("importer: %d first lines for %d rows", len(lines), len(batch))
	}
	return lines, nil
}

// seenTTL bounds how long an import's seen set outlives an import that stopped without removing
// it.
const seenTTL = 24 * time.Hour

// firstLineScript sets each key of ARGV (pairs from ARGV[2]: key, line) to its line in the hash
// KEYS[1] unless a line is set already, and answers each key's line; ARGV[1] is the hash's TTL.
var firstLineScript = redis.NewScript(`
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    out[#out + 1] = tonumber(ARGV[i + 1])
  else
    out[#out + 1] = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return out`)

// fail counts a failed row, keeping its error among the first MaxErrors.
func (r *run[T]) fail(line int64, e *typev1.ImportRowError) {
	r.meta.Failed++
	r.meta.ErrorCount++
	if len(r.meta.Errors) < MaxErrors {
		e.Line = line
		r.meta.Errors = append(r.meta.Errors, e)
	}
}

// errTooLarge marks the refusal of a file over Runner.MaxBytes.
var errTooLarge = errors.New("importer: the file is over the size limit")

// chunkReader reads the file's bytes from the stream's messages as they come, up to max bytes
// (0: any number).
type chunkReader struct {
	stream    Stream
	buf       []byte
	max, read int64
	// sum, when set, hashes every byte received (an idempotency key's request); whole is set once
	// the stream ended, and onWhole then runs once.
	sum     hash.Hash
	whole   bool
	onWhole func()
}

// whenWhole runs f once the whole stream is received (now, if it is).
func (c *chunkReader) whenWhole(f func()) {
	if c.whole {
		f()
		return
	}
	c.onWhole = f
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.max > 0 && c.read > c.max {
		// Nothing past the limit is read: the rows of the batches before it are the import's.
		return 0, tooLarge(c.max)
	}
	for len(c.buf) == 0 {
		msg, err := c.stream.Recv()
		if errors.Is(err, io.EOF) && !c.whole {
			c.whole = true
			if c.onWhole != nil {
				c.onWhole()
			}
		}
		if err != nil {
			return 0, err
		}
		if limit := msg.GetOverLimitBytes(); limit > 0 {
			return 0, tooLarge(limit) // the gateway stopped a body past its limit
		}
		c.buf = msg.GetData()
		if c.read += int64(len(c.buf)); c.max > 0 && c.read > c.max {
			return 0, tooLarge(c.max)
		}
		if c.sum != nil {
			c.sum.Write(c.buf)
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// tooLarge is the refusal of a file over max bytes, as the gateway words a REST body's.
func tooLarge(max int64) error {
	return fmt.Errorf("%w: %w", apierr.Invalid("body", fmt.Sprintf("an import body is at most %d bytes; split the file", max)), errTooLarge)
}

// rowReader reads data rows of a CSV or NDJSON file, by documented column.
type rowReader struct {
	next func() (Row, *typev1.ImportRowError, error)
}

// newRows reads the options of the first message and, for a CSV, its header.
func newRows[T any](first *typev1.ImportChunk, src io.Reader, kind Kind[T]) (*rowReader, error) {
	columns := map[string]bool{}
	for _, c := range kind.Columns {
		columns[c] = true
	}
	for from, to := range first.GetColumnMapping() {
		if !columns[to] {
			return nil, apierr.Invalid("column_mapping", fmt.Sprintf("%q maps to %q, which is not a column of %s (%s)",
				from, to, kind.Name, strings.Join(kind.Columns, ", ")))
		}
	}
	name := func(col string) string {
		col = strings.TrimSpace(col)
		if to, ok := first.GetColumnMapping()[col]; ok {
			return to
		}
		return col
	}
	if first.GetResumeFromLine() < 0 {
		return nil, apierr.Invalid("resume_from_line", "must not be negative")
	}
	switch first.GetFormat() {
	case typev1.ImportFormat_IMPORT_FORMAT_NDJSON:
		return ndjsonRows(src, name, kind.Required), nil
	case typev1.ImportFormat_IMPORT_FORMAT_CSV, typev1.ImportFormat_IMPORT_FORMAT_UNSPECIFIED:
		return csvRows(src, name, columns, kind.Required)
	}
	return nil, apierr.Invalid("format", "must be IMPORT_FORMAT_CSV or IMPORT_FORMAT_NDJSON")
}

func csvRows(src io.Reader, name func(string) string, columns map[string]bool, required []string) (*rowReader, error) {
	in := newCSVReader(src)
	header, _, err := in.read()
	if errors.Is(err, io.EOF) {
		return nil, apierr.Invalid("body", "the file is empty: a CSV starts with a header row")
	}
	if err != nil {
		return nil, csvError(err)
	}
	cols := make([]string, len(header))
	have := map[string]int{} // column → its 1-based position
	if len(header) > 0 {     // a BOM an editor wrote is not part of the first column's name
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return nil, apierr.Invalid("header", "not valid UTF-8")
		}
		cols[i] = name(h)
		// Two file columns for one documented column (written twice, or mapped to it): which
		// value a row takes would be a guess, so the file is refused before a row is read.
		if at, ok := have[cols[i]]; ok && columns[cols[i]] {
			return nil, apierr.Invalid("header", fmt.Sprintf("line 1: columns %d (%q) and %d (%q) are both the %q column: a column may appear once",
				at, header[at-1], i+1, h, cols[i]))
		}
		have[cols[i]] = i + 1
	}
	for _, req := range required {
		if have[req] == 0 {
			return nil, apierr.Invalid("header", fmt.Sprintf("the header has no %q column (columns: %s)", req, strings.Join(header, ",")))
		}
	}
	return &rowReader{next: func() (Row, *typev1.ImportRowError, error) {
		rec, line, err := in.read()
		if errors.Is(err, io.EOF) {
			return Row{}, nil, io.EOF
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			return Row{Line: int64(pe.StartLine)}, RowError("", ReasonMalformed, in.problem(pe)), nil
		}
		if err != nil {
			return Row{}, nil, csvError(err)
		}
		row := Row{Line: int64(line), values: make(map[string]string, len(cols))}
		if len(rec) > len(cols) {
			return row, RowError("", ReasonMalformed, fmt.Sprintf("%d values for %d columns", len(rec), len(cols))), nil
		}
		for i, v := range rec {
			if !utf8.ValidString(v) {
				return row, RowError(cols[i], ReasonInvalidUTF8, "not valid UTF-8"), nil
			}
			row.values[cols[i]] = v
		}
		if len(rec) < len(cols) {
			return row, RowError(cols[len(rec)], ReasonMissingColumn, fmt.Sprintf("%d values for %d columns", len(rec), len(cols))), nil
		}
		return row, nil, nil
	}}, nil
}

// csvReader reads a CSV strictly (RFC 4180) but for one tolerance: a quote inside an unquoted
// value (5" screen, as spreadsheets write it) is read as itself. LazyQuotes gave that tolerance
// and more: a quoted value that never closed ran to the end of the file, or on to any later
// quote before a comma, silently taking the rows between as its text. Strict, that is the row's
// error; a record with a bare quote is read again from its bytes, each such value quoted.
type csvReader struct {
	in  *csv.Reader
	tee *teeReader
	// start is the input offset of the next record; peeked a record read ahead.
	start  int64
	peeked *csvRecord
}

type csvRecord struct {
	rec  []string
	line int
	err  error
}

func newCSVReader(src io.Reader) *csvReader {
	tee := &teeReader{src: src}
	in := csv.NewReader(tee)
	in.FieldsPerRecord, in.ReuseRecord = -1, true
	return &csvReader{in: in, tee: tee}
}

// read is the next record and the line it starts on.
func (c *csvReader) read() ([]string, int, error) {
	if p := c.peeked; p != nil {
		c.peeked = nil
		return p.rec, p.line, p.err
	}
	rec, err := c.in.Read()
	from, to := c.start, c.in.InputOffset()
	c.start = to
	pe, bare := errors.AsType[*csv.ParseError](err)
	bare = bare && errors.Is(pe.Err, csv.ErrBareQuote)
	var raw []byte
	if bare {
		raw = bytes.Clone(c.tee.buf[from-c.tee.base : to-c.tee.base])
	}
	c.tee.forget(to)
	if bare {
		rec, err = quoteBare(raw, pe)
		return unguard(rec), pe.StartLine, err
	}
	if err != nil {
		return nil, 0, err // FieldPos panics without a record
	}
	line, _ := c.in.FieldPos(0)
	return unguard(rec), line, nil
}

// unguard takes off the apostrophes a CSV export put before values a spreadsheet would run as
// formulas (GuardCell), in place.
func unguard(rec []string) []string {
	for i, v := range rec {
		rec[i] = UnguardCell(v)
	}
	return rec
}

// problem says what is wrong with a record the reader refused, reading ahead to tell a quoted
// value that runs to the end of the file from one a later quote cut short.
func (c *csvReader) problem(pe *csv.ParseError) string {
	if !errors.Is(pe.Err, csv.ErrQuote) {
		return pe.Err.Error()
	}
	rec, line, err := c.read()
	c.peeked = &csvRecord{rec: rec, line: line, err: err}
	switch {
	case errors.Is(err, io.EOF) && pe.Line > pe.StartLine:
		return fmt.Sprintf("a quoted value opens on this line and is never closed: it runs to the end of the file, "+
			"so lines %d to %d are not imported", pe.StartLine+1, pe.Line)
	case errors.Is(err, io.EOF):
		return "a quoted value opens on this line and is never closed"
	case pe.Line > pe.StartLine:
		return fmt.Sprintf("a quoted value opens on this line and is not closed: it runs on to line %d, where a quote at "+
			"column %d is followed by text, not a comma or the end of a line; lines %d to %d are not imported",
			pe.Line, pe.Column, pe.StartLine+1, pe.Line)
	}
	return fmt.Sprintf("the quote at column %d is followed by text: a quote inside a quoted value is written twice (\"\")", pe.Column)
}

// maxBare bounds the values with a bare quote that one record is read again for.
const maxBare = 100

// quoteBare reads a record with a quote in an unquoted value again from its bytes raw, that value
// quoted and its quotes doubled, as many times as it has such values; pe is where the first is.
func quoteBare(raw []byte, pe *csv.ParseError) ([]string, error) {
	for range maxBare {
		// The value is on pe's line, from the comma before the quote to the next comma or line end.
		lineStart := 0
		for range pe.Line - pe.StartLine {
			lineStart += bytes.IndexByte(raw[lineStart:], '\n') + 1
		}
		at := lineStart + pe.Column - 1
		if at >= len(raw) || raw[at] != '"' {
			return nil, pe // not where the reader said: refuse the row rather than guess
		}
		from := lineStart + bytes.LastIndexByte(raw[lineStart:at], ',') + 1
		to := len(raw)
		if i := bytes.IndexAny(raw[at:], ",\r\n"); i >= 0 {
			to = at + i
		}
		quoted := append(append([]byte{'"'}, bytes.ReplaceAll(raw[from:to], []byte{'"'}, []byte(`""`))...), '"')
		raw = slices.Concat(raw[:from], quoted, raw[to:])
		in := csv.NewReader(bytes.NewReader(raw))
		in.FieldsPerRecord = -1
		rec, err := in.Read()
		next, ok := errors.AsType[*csv.ParseError](err)
		if !ok {
			return rec, err
		}
		// Lines counted from the record's first.
		next.StartLine, next.Line = pe.StartLine, next.Line+pe.StartLine-1
		if !errors.Is(next.Err, csv.ErrBareQuote) {
			return nil, next
		}
		pe = next
	}
	return nil, pe
}

// teeReader keeps what the CSV reader read of src from offset base on.
type teeReader struct {
	src  io.Reader
	buf  []byte
	base int64
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// forget drops what comes before offset off.
func (t *teeReader) forget(off int64) {
	t.buf, t.base = t.buf[off-t.base:], off
}

// csvError is a failure to read the file: the stream's own error (the client went away), else a
// file that cannot be read on.
func csvError(err error) error {
	if _, ok := errors.AsType[*csv.ParseError](err); ok {
		return apierr.Invalid("body", err.Error())
	}
	return err
}

// maxLine bounds an NDJSON line.
const maxLine = 1 << 20

func ndjsonRows(src io.Reader, name func(string) string, required []string) *rowReader {
	in := bufio.NewScanner(src)
	in.Buffer(make([]byte, 0, 64<<10), maxLine)
	var line int64
	return &rowReader{next: func() (Row, *typev1.ImportRowError, error) {
		for in.Scan() {
			line++
			raw := in.Bytes()
			if line == 1 {
				// A BOM an editor wrote is not part of the first object (csvRows drops it too).
				raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
			}
			text := bytes.TrimSpace(raw)
			if len(text) == 0 {
				continue
			}
			row := Row{Line: line, values: map[string]string{}}
			if !utf8.Valid(text) {
				return row, RowError("", ReasonInvalidUTF8, "not valid UTF-8"), nil
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(text, &obj); err != nil || obj == nil {
				return row, RowError("", ReasonMalformed, jsonProblem(err, text, len(raw)-len(bytes.TrimLeft(raw, " \t\r"))+1)), nil
			}
			for k, raw := range obj {
				v, ok := jsonText(raw)
				if !ok {
					return row, RowError(name(k), ReasonInvalidValue, "must be a string, a number, a boolean, an object or a list of strings"), nil
				}
				row.values[name(k)] = v
			}
			for _, req := range required {
				if !row.Has(req) {
					return row, RowError(req, ReasonMissingColumn, "the object has no "+req), nil
				}
			}
			return row, nil, nil
		}
		if err := in.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return Row{}, nil, apierr.Invalid("body", fmt.Sprintf("line %d is longer than %d bytes", line+1, maxLine))
			}
			return Row{}, nil, err
		}
		return Row{}, nil, io.EOF
	}}
}

// jsonProblem says what is wrong with a line that is not a JSON object, in the terms of the file
// (the decoder's own text names Go types); text starts at column first of its line.
func jsonProblem(err error, text []byte, first int) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// A line cut short and a bad last byte both stop at its end; a decoder tells them apart.
		if errors.Is(json.NewDecoder(bytes.NewReader(text)).Decode(new(any)), io.ErrUnexpectedEOF) {
			return "invalid JSON: the line ends before the object does"
		}
		at := min(max(int(se.Offset)-1, 0), len(text)-1) // the byte the decoder stopped at
		r, _ := utf8.DecodeRune(text[at:])
		return fmt.Sprintf("invalid JSON at column %d: unexpected %q", first+utf8.RuneCount(text[:at]), r)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		what := map[string]string{"array": "an array", "string": "a string", "number": "a number", "bool": "true or false"}[te.Value]
		return fmt.Sprintf("the line is %s, not a JSON object", cmp.Or(what, "another JSON value"))
	}
	if err == nil {
		return "the line is JSON null, not an object"
	}
	return "the line is not a JSON object"
}

// jsonText is the text of a JSON value as a column holds it: a list of strings as JoinList writes it,
// an object as its JSON.
func jsonText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return JoinList(list), true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v.(type) {
	case nil:
		return "", true
	case float64, bool:
		return string(raw), true
	case map[string]any:
		// An object (a price as the export writes it) is its compact JSON, as a CSV cell holds it.
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return "", false
		}
		return b.String(), true
	}
	return "", false
}

// GetOperation serves a service's GetOperation.
func (r *Runner) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	return r.Ops.Get(ctx, tenant, req.GetName())
}

// CancelOperation serves a service's CancelOperation.
func (r *Runner) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*longrunningpb.Operation, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	op, changed, err := r.Ops.Cancel(ctx, tenant, req.GetName())
	if err != nil || !changed {
		// A done operation (or one asked already) is answered as it is, as google.longrunning
		// clients expect of a best-effort cancel (they read the operation to learn how it ended),
		// and nothing is recorded: nothing was cancelled.
		return op, err
	}
	// Recorded once the cancel is asked (an unknown name records nothing). If recording fails the
	// caller gets the error, but the cancel stands and a retry records nothing: a lost entry, never
	// one of a cancel that did not happen.
	if err := r.Audit.Record(ctx, tenant, r.Cancelled.Of(&eventv1.OperationCancelled{Name: op.GetName()})); err != nil {
		return nil, err
	}
	return op, nil
}

// ListOperations serves a service's ListOperations: the tenant's operations, newest first. Its
// tokens are bound to operations.ListMethod, the same in every service, so that one continues
// every service's list (the gateway merges them).
func (r *Runner) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetFilter() != "" {
		return nil, apierr.Invalid("filter", "operations take no filter")
	}
	if req.GetPageSize() < 0 {
		return nil, apierr.Invalid("page_size", "must not be negative")
	}
	list := r.Tokens.List(tenant, operations.ListMethod, "")
	after, err := list.Cursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	p, err := r.Ops.List(ctx, tenant, page.Request{After: after, Limit: pagesize.Of(req.GetPageSize())})
	if err != nil {
		return nil, err
	}
	return &longrunningpb.ListOperationsResponse{Operations: p.Items, NextPageToken: list.Token(p.Next)}, nil
}
