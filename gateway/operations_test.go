package gateway_test

import (
	"cmp"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/operations"
	"github.com/crmcycle/crm/pkg/pagetoken"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// opsClock is the services' clock in the operations test: settable, so that operations of
// different services share a creation ms.
type opsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *opsClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *opsClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// The three importing services, each with the real operations list (importer.Runner) and
// nothing else.
type (
	marketingOps struct {
		marketingv1.UnimplementedMarketingServiceServer
		runs *importer.Runner
	}
	salesOps struct {
		salesv1.UnimplementedSalesServiceServer
		runs *importer.Runner
	}
	productOps struct {
		productv1.UnimplementedProductServiceServer
		runs *importer.Runner
	}
)

func (s marketingOps) ListOperations(ctx context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.runs.ListOperations(ctx, r)
}

func (s salesOps) ListOperations(ctx context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.runs.ListOperations(ctx, r)
}

func (s productOps) ListOperations(ctx context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.runs.ListOperations(ctx, r)
}

// TestListOperationsPagesTheMergedListOnce starts 260 operations in three services, many sharing
// a ms with another service's, and pages GET /v1/operations through at several page sizes: every
// operation exactly once, newest first as sorted here from the test's own record, each page at
// most the size asked (lowered to 1000), and a next page token while any are left.
func TestListOperationsPagesTheMergedListOnce(t *testing.T) {
	clock := &opsClock{}
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(t.Context(), rdb, servicetest.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := pagetoken.Load(t.Context(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	runners := map[string]*importer.Runner{}
	for _, service := range []string{"marketing", "sales", "product"} {
		runners[service] = &importer.Runner{Redis: rdb, Keys: keys, Service: service, Tokens: tokens,
			Ops: operations.New(rdb, keys, service, clock.now)}
	}
	suite := servicetest.Start(t, servicetest.Options{Fakes: []func(grpc.ServiceRegistrar){func(s grpc.ServiceRegistrar) {
		marketingv1.RegisterMarketingServiceServer(s, marketingOps{runs: runners["marketing"]})
		salesv1.RegisterSalesServiceServer(s, salesOps{runs: runners["sales"]})
		productv1.RegisterProductServiceServer(s, productOps{runs: runners["product"]})
	}}})
	sys := gatewaytest.Start(t, suite, gateway.Config{MaxBodyBytes: 1 << 20})
	tenant, key := sys.NewKey(t, "", "marketing.read", "sales.read", "product.read")

	type started struct {
		name string
		ms   int64
	}
	var all []started
	rng := rand.New(rand.NewPCG(3, 4))
	at := time.UnixMilli(1_765_000_000_000)
	services := []string{"marketing", "sales", "product"}
	for range 260 {
		if rng.IntN(3) == 0 {
			at = at.Add(time.Duration(1+rng.IntN(3)) * time.Millisecond)
		}
		clock.set(at.Add(time.Duration(rng.IntN(1000)) * time.Microsecond))
		meta := &typev1.ImportMetadata{}
		op, err := runners[services[rng.IntN(3)]].Ops.Start(t.Context(), tenant, meta)
		if err != nil {
			t.Fatal(err)
		}
		meta.State = typev1.ImportState_IMPORT_STATE_SUCCEEDED
		if err := op.Finish(t.Context(), meta, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, started{name: op.Name(), ms: at.UnixMilli()})
	}
	id := func(name string) string { _, v, _ := strings.Cut(name, "."); return v }
	slices.SortFunc(all, func(a, b started) int {
		return cmp.Or(cmp.Compare(b.ms, a.ms), strings.Compare(id(b.name), id(a.name)))
	})
	var want []string
	for _, o := range all {
		want = append(want, o.name)
	}

	for _, size := range []struct{ ask, max int }{{1, 1}, {2, 2}, {3, 3}, {7, 7}, {0, 50}, {100, 100}, {5000, 1000}} {
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > 300 {
				t.Fatalf("pageSize %d: the list does not end", size.ask)
			}
			q := url.Values{"pageSize": {strconv.Itoa(size.ask)}}
			if token != "" {
				q.Set("pageToken", token)
			}
			var page struct {
				Operations []struct {
					Name string `json:"name"`
				} `json:"operations"`
				NextPageToken string `json:"nextPageToken"`
			}
			if err := json.Unmarshal(sys.OKBytes(t, http.MethodGet, "/v1/operations?"+q.Encode(), key, nil), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Operations) > size.max {
				t.Fatalf("pageSize %d: a page of %d", size.ask, len(page.Operations))
			}
			for _, op := range page.Operations {
				got = append(got, op.Name)
			}
			if page.NextPageToken == "" {
				break
			}
			token = page.NextPageToken
		}
		if !slices.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Errorf("pageSize %d: %d operations, want the %d newest first; they part at %d", size.ask, len(got), len(want), i)
		}
	}

	// Wrong requests name what is wrong; a token is the tenant's own.
	first := sys.OK(t, http.MethodGet, "/v1/operations?pageSize=5", key, "")
	token, _ := first["nextPageToken"].(string)
	if token == "" {
		t.Fatal("no nextPageToken with 260 operations and pageSize 5")
	}
	_, stranger := sys.NewKey(t, "", "marketing.read", "sales.read", "product.read")
	for _, c := range []struct{ query, key, field, desc string }{
		{"pageSize=-1", key, "pageSize", ""},
		{"pageSize=x", key, "pageSize", ""},
		{"pageToken=garbage", key, "pageToken", pagetoken.ErrInvalid.Fields[0].Description},
		{"pageToken=" + url.QueryEscape(token[:len(token)-2]), key, "pageToken", pagetoken.ErrInvalid.Fields[0].Description},
		{"pageToken=" + url.QueryEscape(token), stranger, "pageToken", pagetoken.ErrInvalid.Fields[0].Description},
		{"filter=x", key, "filter", ""},
		{"filter=" + url.QueryEscape("done = true"), key, "filter", ""},
		{"orderBy=name", key, "orderBy", ""},
	} {
		r := sys.Do(t, http.MethodGet, "/v1/operations?"+c.query, c.key, nil)
		if r.Status != http.StatusBadRequest || !slices.Equal(r.FieldViolations(t), []string{c.field}) ||
			!strings.Contains(string(r.Body), c.desc) {
			t.Errorf("?%s: %d %s, want 400 naming %s", c.query, r.Status, r.Body, c.field)
		}
	}
}
