package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/pkg/flagenv"
	"github.com/crmcycle/crm/pkg/importer"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// importKinds open each kind's Import stream and name its service's operations client.
var importKinds = map[string]func(conn *grpc.ClientConn) (func(context.Context) (importClientStream, error), operationsGetter){
	"leads": func(c *grpc.ClientConn) (func(context.Context) (importClientStream, error), operationsGetter) {
		m := marketingv1.NewMarketingServiceClient(c)
		return func(ctx context.Context) (importClientStream, error) { return m.ImportLeads(ctx) }, m
	},
	"contacts": func(c *grpc.ClientConn) (func(context.Context) (importClientStream, error), operationsGetter) {
		s := salesv1.NewSalesServiceClient(c)
		return func(ctx context.Context) (importClientStream, error) { return s.ImportContacts(ctx) }, s
	},
	"accounts": func(c *grpc.ClientConn) (func(context.Context) (importClientStream, error), operationsGetter) {
		s := salesv1.NewSalesServiceClient(c)
		return func(ctx context.Context) (importClientStream, error) { return s.ImportAccounts(ctx) }, s
	},
	"products": func(c *grpc.ClientConn) (func(context.Context) (importClientStream, error), operationsGetter) {
		p := productv1.NewProductServiceClient(c)
		return func(ctx context.Context) (importClientStream, error) { return p.ImportProducts(ctx) }, p
	},
}

type importClientStream = grpc.ClientStreamingClient[typev1.ImportChunk, longrunningpb.Operation]

type operationsGetter interface {
	GetOperation(ctx context.Context, in *longrunningpb.GetOperationRequest, opts ...grpc.CallOption) (*longrunningpb.Operation, error)
}

type mapping map[string]string

func (m mapping) String() string { return fmt.Sprint(map[string]string(m)) }
func (m mapping) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("a mapping is FileColumn=column")
	}
	m[from] = to
	return nil
}

// importFile is `crm import FILE --kind leads`: the file streamed to the kind's Import RPC in
// chunks, with a progress bar on a terminal (plain progress lines otherwise), then the outcome and
// the first row errors. An import that stopped says how to resume it.
func importFile(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stdout)
	kind := fs.String("kind", "leads", "what the file holds: leads, contacts, accounts or products")
	addr := fs.String("addr", "localhost:9090", "gRPC address of the service that imports the kind (crm dev: all of them)")
	key := fs.String("api-key", "", "API key (or CRM_API_KEY)")
	format := fs.String("format", "", "csv or ndjson (default: by the file's extension, csv otherwise)")
	resume := fs.Int64("resume-from-line", 0, "skip the data rows before this line (an import that ended FAILED says which)")
	idemKey := fs.String("idempotency-key", "", "makes running the command again safe: the same key, kind, flags and file answer the first run's operation without importing (24 h)")
	columns := mapping{}
	fs.Var(columns, "map", "rename a file column to a documented one: --map E-mail=email (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: crm import FILE [--kind leads|contacts|accounts|products] [flags]")
		fmt.Fprintln(stdout, "exit status: 0 every row written (or already so); 1 the import failed, stopped or could not start;")
		fmt.Fprintln(stdout, "2 it finished with failed rows (the first are listed, all in the operation)")
		fs.PrintDefaults()
	}
	// The file comes first; flags may follow it.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if err := flagenv.Apply(fs, "CRM", nil); err != nil {
		return err
	}
	open, ok := importKinds[*kind]
	if file == "" || !ok {
		fs.Usage()
		return errors.New("give a FILE and a --kind of leads, contacts, accounts or products")
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	first := &typev1.ImportChunk{ColumnMapping: columns, ResumeFromLine: *resume}
	switch strings.ToLower(*format) {
	case "ndjson", "jsonl":
		first.Format = typev1.ImportFormat_IMPORT_FORMAT_NDJSON
	case "csv":
		first.Format = typev1.ImportFormat_IMPORT_FORMAT_CSV
	case "":
		first.Format = typev1.ImportFormat_IMPORT_FORMAT_CSV
		if ext := strings.ToLower(filepath.Ext(file)); ext == ".ndjson" || ext == ".jsonl" {
			first.Format = typev1.ImportFormat_IMPORT_FORMAT_NDJSON
		}
	default:
		return fmt.Errorf("--format %q: want csv or ndjson", *format)
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	if *key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*key)
	}
	if *idemKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "idempotency-key", *idemKey)
	}
	startStream, ops := open(conn)
	stream, err := startStream(ctx)
	if err != nil {
		return err
	}
	progress := newProgress(stdout, info.Size())
	defer progress.done()
	var name string
	watching, watched := false, make(chan struct{}) // closed once watch has run: its name and output come before ours
	waitWatch := func() {                           // a stream that ended or failed has its header, or never will: watch returns
		if watching {
			<-watched
			watching = false
		}
	}
	defer waitWatch()
	watch := func() { // the operation's name comes in the header once the service has read the file's header
		defer close(watched)
		if md, err := stream.Header(); err == nil && len(md.Get(importer.OperationHeader)) > 0 {
			name = md.Get(importer.OperationHeader)[0]
			progress.named(name)
			go progress.poll(ctx, ops, name)
		}
	}
	buf := make([]byte, 256<<10)
	for msg := first; ; msg = new(typev1.ImportChunk) {
		n, rerr := io.ReadFull(f, buf)
		msg.Data = append([]byte(nil), buf[:n]...)
		if n > 0 || msg == first {
			if err := stream.Send(msg); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			progress.sent(int64(n))
			if msg == first {
				watching = true
				go watch()
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	op, err := stream.CloseAndRecv()
	waitWatch()
	progress.done()
	if err != nil {
		if name != "" {
			return fmt.Errorf("%w\nthe import %s stopped: `crm import %s --kind %s --resume-from-line N` with the resumeFromLine GET /v1/%s shows",
				err, name, file, *kind, name)
		}
		return err
	}
	return report(stdout, op, file, *kind)
}

// report prints the outcome, the first row errors and, for an import that stopped, how to resume.
func report(stdout io.Writer, op *longrunningpb.Operation, file, kind string) error {
	meta := &typev1.ImportMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: %d rows read, %d created, %d updated, %d skipped, %d failed\n", op.GetName(),
		strings.TrimPrefix(meta.GetState().String(), "IMPORT_STATE_"), meta.GetRowsRead(), meta.GetCreated(),
		meta.GetUpdated(), meta.GetSkipped(), meta.GetFailed())
	for i, e := range meta.GetErrors() {
		if i == 20 {
			fmt.Fprintf(stdout, "  ... %d more row errors: GET /v1/%s\n", meta.GetErrorCount()-20, op.GetName())
			break
		}
		fmt.Fprintf(stdout, "  line %d: %s %s: %s\n", e.GetLine(), e.GetField(), e.GetReason(), e.GetMessage())
	}
	switch meta.GetState() {
	case typev1.ImportState_IMPORT_STATE_FAILED:
		return fmt.Errorf("the import stopped after line %d: crm import %s --kind %s --resume-from-line %d",
			meta.GetCheckpointLine(), file, kind, meta.GetResumeFromLine())
	case typev1.ImportState_IMPORT_STATE_CANCELLED:
		return errors.New("the import was cancelled")
	}
	if meta.GetFailed() > 0 {
		// Finished, but not every row is in: a script must not read it as a clean import.
		return &exitError{code: exitRowsFailed, err: fmt.Errorf("%d of %d rows failed: fix them and import the file again (rows already written are skipped)",
			meta.GetFailed(), meta.GetRowsRead())}
	}
	return nil
}

// exitRowsFailed is crm import's exit status for an import that finished with failed rows.
const exitRowsFailed = 2

// progress shows an import's progress: a bar of the bytes sent on a terminal, with the counts
// of the operation; plain lines every second otherwise.
type progress struct {
	mu      sync.Mutex
	out     io.Writer
	bar     *progressbar.ProgressBar // nil when not a terminal
	total   int64
	sentN   int64
	meta    *typev1.ImportMetadata
	name    string
	lastLog time.Time
	stopped bool
}

func newProgress(out io.Writer, total int64) *progress {
	p := &progress{out: out, total: total}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(out), progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetDescription("import"), progressbar.OptionShowElapsedTimeOnFinish())
	}
	return p
}

func (p *progress) named(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name = name
	if p.bar == nil {
		fmt.Fprintf(p.out, "operation %s\n", name)
	}
}

func (p *progress) sent(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sentN += n
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// poll reads the operation's counts twice a second until the import is done.
func (p *progress) poll(ctx context.Context, ops operationsGetter, name string) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		op, err := ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name})
		meta := &typev1.ImportMetadata{}
		if err != nil || op.GetMetadata().UnmarshalTo(meta) != nil {
			continue
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.meta = meta
		counts := fmt.Sprintf("%d read, %d created, %d updated, %d skipped, %d failed",
			meta.GetRowsRead(), meta.GetCreated(), meta.GetUpdated(), meta.GetSkipped(), meta.GetFailed())
		if p.bar != nil {
			p.bar.Describe(counts)
		} else if time.Since(p.lastLog) >= time.Second {
			p.lastLog = time.Now()
			fmt.Fprintf(p.out, "%s: %d of %d bytes sent; %s\n", name, p.sentN, p.total, counts)
		}
		p.mu.Unlock()
		if op.GetDone() {
			return
		}
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.out)
	}
	p.stopped = true
}
