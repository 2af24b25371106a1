package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// holdEmail is a row whose write waits until the test lets it go: an import of it is still
// running while the test sends its duplicate.
const holdEmail = "hold@example.com"

// applied counts the rows the importing services wrote, by tenant and e-mail: the effect a
// replayed import must not repeat.
type applied struct {
	mu      sync.Mutex
	rows    map[string]int
	entered chan struct{} // closed when the hold row's write starts
	hold    chan struct{} // closed by the test to let it finish
}

func (a *applied) count(tenant, email string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rows[tenant+"/"+email]
}

func (a *applied) kind(name string) importer.Kind[string] {
	return importer.Kind[string]{Name: name, Columns: []string{"email"}, Required: []string{"email"}, KeyName: "e-mail",
		Parse: func(r importer.Row) (string, *typev1.ImportRowError) { return r.Value("email"), nil },
		Key:   func(s string) string { return s },
		Apply: func(_ context.Context, tenant string, items []string) ([]importer.Outcome, error) {
			out := make([]importer.Outcome, len(items))
			for i, email := range items {
				if email == holdEmail {
					close(a.entered)
					<-a.hold
				}
				a.mu.Lock()
				a.rows[tenant+"/"+email]++
				a.mu.Unlock()
				out[i] = importer.Outcome{Result: importer.Created}
			}
			return out, nil
		}}
}

// Two importing services on the real importer, each with its operations.
type (
	leadImports struct {
		marketingv1.UnimplementedMarketingServiceServer
		runs *importer.Runner
		rows *applied
	}
	contactImports struct {
		salesv1.UnimplementedSalesServiceServer
		runs *importer.Runner
		rows *applied
	}
)

func (s leadImports) ImportLeads(stream grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]) error {
	return importer.Serve(s.runs, s.rows.kind("leads"), stream)
}

func (s leadImports) ListOperations(ctx context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.runs.ListOperations(ctx, r)
}

func (s contactImports) ImportContacts(stream grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]) error {
	return importer.Serve(s.runs, s.rows.kind("contacts"), stream)
}

func (s contactImports) ListOperations(ctx context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.runs.ListOperations(ctx, r)
}

// TestImportIdempotencyKeys sends files to the import routes with Idempotency-Key, through the
// real gateway, gRPC server and importer: a retry answers the first call's operation and imports
// nothing; another file, other options or another kind with the key is 422; concurrent duplicates
// import once; the gRPC import with idempotency-key metadata is the same request.
func TestImportIdempotencyKeys(t *testing.T) {
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(t.Context(), rdb, servicetest.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := pagetoken.Load(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	rows := &applied{rows: map[string]int{}, entered: make(chan struct{}), hold: make(chan struct{})}
	runner := func(service string) *importer.Runner {
		return &importer.Runner{Redis: rdb, Keys: keys, Service: service, Tokens: tokens, Ops: operations.New(rdb, keys, service, time.Now)}
	}
	suite := servicetest.Start(t, servicetest.Options{Fakes: []func(grpc.ServiceRegistrar){func(s grpc.ServiceRegistrar) {
		marketingv1.RegisterMarketingServiceServer(s, leadImports{runs: runner("marketing"), rows: rows})
		salesv1.RegisterSalesServiceServer(s, contactImports{runs: runner("sales"), rows: rows})
	}}})
	sys := gatewaytest.Start(t, suite, gateway.Config{})
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write", "sales.read", "sales.write")

	post := func(path, idem, body string) gatewaytest.Response {
		t.Helper()
		return sys.DoWith(t, http.MethodPost, path, key, []byte(body), http.Header{"Content-Type": {"text/csv"}, "Idempotency-Key": {idem}})
	}
	imported := func(r gatewaytest.Response) (*longrunningpb.Operation, *typev1.ImportMetadata) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
		return gatewaytest.DecodeOperation(t, r.Body)
	}
	operationsOf := func(apiKey string) int {
		t.Helper()
		ops, _ := sys.OK(t, http.MethodGet, "/v1/operations", apiKey, "")["operations"].([]any)
		return len(ops)
	}

	fileA := "email\na1@example.com\na2@example.com\n"
	first, meta := imported(post("/v1/leads:import", "imp-1", fileA))
	if meta.GetCreated() != 2 || !first.GetDone() {
		t.Fatalf("first import: %v", meta)
	}
	for range 2 {
		again := post("/v1/leads:import", "imp-1", fileA)
		if op, _ := imported(again); op.GetName() != first.GetName() {
			t.Fatalf("retry answered %s, want the first call's %s", op.GetName(), first.GetName())
		}
	}
	// The same file over gRPC, in other chunks, with the key as metadata: the same request.
	ctx := metadata.AppendToOutgoingContext(servicetest.WithKey(t.Context(), key), "idempotency-key", "imp-1")
	stream, err := marketingv1.NewMarketingServiceClient(suite.Conn).ImportLeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range []string{fileA[:9], fileA[9:]} {
		msg := &typev1.ImportChunk{Data: []byte(part)}
		if i == 0 {
			msg.Format = typev1.ImportFormat_IMPORT_FORMAT_CSV
		}
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	if op, err := stream.CloseAndRecv(); err != nil || op.GetName() != first.GetName() {
		t.Fatalf("gRPC retry: %v %v, want %s", op.GetName(), err, first.GetName())
	}
	for _, email := range []string{"a1@example.com", "a2@example.com"} {
		if n := rows.count(tenant, email); n != 1 {
			t.Fatalf("%s written %d times after retries, want 1", email, n)
		}
	}

	// Another request with the key: another file (found at its end), other options, another kind.
	for _, c := range []struct{ path, body string }{
		{"/v1/leads:import", "email\nb1@example.com\n"},
		{"/v1/leads:import", fileA + "b2@example.com\n"},
		{"/v1/leads:import?resumeFromLine=2", fileA},
		{"/v1/contacts:import", fileA},
	} {
		r := post(c.path, "imp-1", c.body)
		if r.Status != http.StatusUnprocessableEntity || r.ErrorStatus(t) != "INVALID_ARGUMENT" ||
			!strings.Contains(string(r.Body), "IDEMPOTENCY_KEY_REUSED") {
			t.Fatalf("POST %s with a used key: %d %s, want 422", c.path, r.Status, r.Body)
		}
	}
	for _, email := range []string{"b1@example.com", "b2@example.com"} {
		if n := rows.count(tenant, email); n != 0 {
			t.Fatalf("%s written %d times by a refused request, want 0", email, n)
		}
	}
	if n := rows.count(tenant, "a1@example.com"); n != 1 {
		t.Fatalf("a1 written %d times, want 1", n)
	}
	if n := operationsOf(key); n != 1 {
		t.Fatalf("%d operations after one import and its retries, want 1", n)
	}

	// A first call that ends before its file is read whole (a file refused at its header) leaves
	// nothing to compare with: the key is released, and the next call with it imports.
	if r := post("/v1/leads:import", "imp-2", "name\nx\n"); r.Status != http.StatusBadRequest {
		t.Fatalf("a file without an email column: %d %s, want 400", r.Status, r.Body)
	}
	if _, meta := imported(post("/v1/leads:import", "imp-2", "email\nc1@example.com\n")); meta.GetCreated() != 1 {
		t.Fatalf("after a released key: %v", meta)
	}

	// A duplicate of an import still running answers its operation as it is: running.
	fileH := "email\n" + holdEmail + "\n"
	done := make(chan gatewaytest.Response)
	go func() { done <- post("/v1/leads:import", "imp-3", fileH) }()
	<-rows.entered
	dup, _ := imported(post("/v1/leads:import", "imp-3", fileH))
	if dup.GetDone() {
		t.Fatalf("duplicate of a running import answered a done operation: %v", dup)
	}
	close(rows.hold)
	firstH, _ := imported(<-done)
	if !firstH.GetDone() || firstH.GetName() != dup.GetName() {
		t.Fatalf("running import %s, its duplicate answered %s", firstH.GetName(), dup.GetName())
	}

	// Concurrent calls with one key: one import, every caller its operation.
	const callers = 8
	fileD := "email\nd1@example.com\nd2@example.com\n"
	results := make([]gatewaytest.Response, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i] = post("/v1/leads:import", "imp-4", fileD) })
	}
	wg.Wait()
	name := ""
	for i, r := range results {
		op, _ := imported(r)
		if name == "" {
			name = op.GetName()
		}
		if op.GetName() != name {
			t.Fatalf("caller %d answered %s, another %s", i, op.GetName(), name)
		}
	}
	if a, b := rows.count(tenant, "d1@example.com"), rows.count(tenant, "d2@example.com"); a != 1 || b != 1 {
		t.Fatalf("%d concurrent duplicates wrote d1 %d and d2 %d times, want 1", callers, a, b)
	}
	if n := operationsOf(key); n != 4 {
		t.Fatalf("%d operations, want 4 (imp-1, imp-2, imp-3, imp-4)", n)
	}

	// Keys are per tenant: another tenant's imp-1 is its own import.
	otherTenant, other := sys.NewKey(t, "", "marketing.read", "marketing.write")
	r := sys.DoWith(t, http.MethodPost, "/v1/leads:import", other, []byte(fileA), http.Header{"Content-Type": {"text/csv"}, "Idempotency-Key": {"imp-1"}})
	if op, _ := imported(r); op.GetName() == first.GetName() || rows.count(otherTenant, "a1@example.com") != 1 {
		t.Fatalf("another tenant's imp-1 answered %s (first %s)", op.GetName(), first.GetName())
	}
}
