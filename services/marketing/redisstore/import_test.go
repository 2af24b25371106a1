package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/operations"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
)

// errTimeout is what a client sees of a round trip whose reply did not come in time.
var errTimeout = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// slowStore is the store as a client of a slow server sees it: the first cuts calls of
// ImportLeads fail in transit once land of their writes are applied (land < 0: none yet, all of
// them land after the next read, as a server still working through its queue does), and the
// readFails calls of LeadIDsByEmail after a cut fail in transit, sending nothing.
type slowStore struct {
	*redisstore.Store
	mu        sync.Mutex
	cuts      int
	land      int
	readFails int
	failing   int
	late      [][]marketing.LeadWrite
	tenant    string
}

func (s *slowStore) ImportLeads(ctx context.Context, tenant string, writes []marketing.LeadWrite) ([]error, error) {
	s.mu.Lock()
	cut := s.cuts > 0 && len(writes) > 0
	if cut {
		s.cuts--
		s.failing += s.readFails
	}
	s.mu.Unlock()
	if !cut {
		return s.Store.ImportLeads(ctx, tenant, writes)
	}
	if s.land < 0 {
		s.mu.Lock()
		s.late = append(s.late, writes)
		s.mu.Unlock()
		return nil, errTimeout
	}
	if _, err := s.Store.ImportLeads(ctx, tenant, writes[:min(s.land, len(writes))]); err != nil {
		return nil, err
	}
	return nil, errTimeout
}

func (s *slowStore) LeadIDsByEmail(ctx context.Context, tenant string, emails []string) ([]string, error) {
	s.mu.Lock()
	fail := s.failing > 0
	if fail {
		s.failing--
	}
	late := s.late
	s.late = nil
	s.mu.Unlock()
	if fail {
		return nil, errTimeout
	}
	ids, err := s.Store.LeadIDsByEmail(ctx, tenant, emails)
	for _, writes := range late { // applied once the read is answered: it did not see them
		if _, lerr := s.Store.ImportLeads(ctx, tenant, writes); lerr != nil {
			return nil, lerr
		}
	}
	return ids, err
}

// importStream is the server side of an Import RPC carrying one CSV file.
type importStream struct {
	grpc.ServerStream
	ctx    context.Context
	chunks []*typev1.ImportChunk
	out    *longrunningpb.Operation
}

func (s *importStream) Context() context.Context { return s.ctx }

func (s *importStream) Recv() (*typev1.ImportChunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *importStream) SendAndClose(op *longrunningpb.Operation) error { s.out = op; return nil }

// importThrough imports a CSV through importer.Serve with the lead kind over store, inFlight
// batches at once.
func importThrough(t *testing.T, f fixture, store marketing.Store, inFlight int, file []byte) *typev1.ImportMetadata {
	t.Helper()
	leads := marketing.NewLeads(store, events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}, validator(t), time.Now)
	runner := &importer.Runner{Redis: f.rdb, Keys: f.keys, Ops: operations.New(f.rdb, f.keys, "marketing", time.Now), Service: "marketing", InFlight: inFlight}
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{TenantID: f.tenant})
	stream := &importStream{ctx: ctx, chunks: []*typev1.ImportChunk{{Data: file}}}
	if err := importer.Serve(runner, leads.LeadImport(), stream); err != nil {
		t.Errorf("import: %v", err)
		return nil
	}
	meta := &typev1.ImportMetadata{}
	if err := stream.out.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	return meta
}

// TestImportCountsItsOwnWritesCutInTransit: rows whose write was applied though its reply was
// lost count as created, not skipped, whether the write landed before the store's next failures
// (so the batch's retries outlast the kind's first tries) or after the next round's reads (so a
// later round planned the row again); two imports of the same new rows at once, each on such a
// store, count each row created once between them. The counts are checked against the file and
// the leads stored: every e-mail has a lead, written once (etag 1).
func TestImportCountsItsOwnWritesCutInTransit(t *testing.T) {
	const rows = 3 * importer.BatchSize / 2
	for _, c := range []struct {
		name                  string
		cuts, land, readFails int
		imports, inFlight     int
	}{
		{"applied, then the reads fail", 1, 64, 3, 1, 0},
		// One batch at a time: both cuts are the first batch's, its second round's writes sent
		// when the first round's land.
		{"applied after the next reads", 2, -1, 0, 1, 1},
		{"two imports at once", 1, 64, 3, 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			var b strings.Builder
			b.WriteString("email,givenName\n")
			emails := make([]string, rows)
			for i := range emails {
				emails[i] = fmt.Sprintf("p%d@example.com", i)
				fmt.Fprintf(&b, "%s,P%d\n", emails[i], i)
			}
			metas := make([]*typev1.ImportMetadata, c.imports)
			var wg sync.WaitGroup
			for i := range metas {
				store := &slowStore{Store: f.store, cuts: c.cuts, land: c.land, readFails: c.readFails}
				wg.Go(func() { metas[i] = importThrough(t, f, store, c.inFlight, []byte(b.String())) })
			}
			wg.Wait()
			var created, skipped int64
			for _, m := range metas {
				if m.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED || m.GetFailed() != 0 || m.GetUpdated() != 0 ||
					m.GetCreated()+m.GetSkipped() != rows {
					t.Errorf("import: %v", m)
				}
				created, skipped = created+m.GetCreated(), skipped+m.GetSkipped()
			}
			if created != rows || skipped != int64((c.imports-1)*rows) {
				t.Errorf("%d created, %d skipped; want %d, %d", created, skipped, rows, (c.imports-1)*rows)
			}
			ctx := context.Background()
			ids, err := f.store.LeadIDsByEmail(ctx, f.tenant, emails)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := f.store.GetLeads(ctx, f.tenant, ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range stored {
				if l.GetEmail() != emails[i] || l.GetEtag() != "1" {
					t.Fatalf("lead of %s: %v", emails[i], l)
				}
			}
		})
	}
}
