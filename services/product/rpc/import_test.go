package rpc_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/product/server"
)

var importScopes = []string{"product.read", "product.write", "product.export"}

var periods = []string{"BILLING_PERIOD_ONE_TIME", "BILLING_PERIOD_MONTHLY", "BILLING_PERIOD_YEARLY"}

// genProducts: names with accents, SKUs in random case, prices with cents, five kinds of malformed
// rows (a bad price, a missing column, a bad billing period, a SKU an earlier row had in other
// case, invalid UTF-8).
func genProducts(rows int, seed uint64) gatewaytest.GeneratedFile {
	rng := rand.New(rand.NewPCG(seed, 11))
	return gatewaytest.Generate(rows, "sku,displayName,price,billingPeriod,category,features,active", func(i int) (string, []string) {
		sku := fmt.Sprintf("Sku-%d-%d", seed, i)
		features := ""
		if i%4 == 0 {
			features = "sso;audit.log"
		}
		price := fmt.Sprintf("%d.%02d EUR", rng.IntN(500), rng.IntN(100))
		return strings.ToLower(sku), []string{sku, fmt.Sprintf("Prodüct Çafé %d", i), price, periods[rng.IntN(3)],
			[]string{"tools", "apps"}[rng.IntN(2)], features, []string{"true", "false"}[rng.IntN(2)]}
	}, func(i int, row, earlier []string) ([]string, *typev1.ImportRowError) {
		switch (i / 100) % 5 {
		case 0:
			row[2] = "twelve EUR"
			return row, &typev1.ImportRowError{Field: "price", Reason: importer.ReasonInvalidValue}
		case 1:
			return row[:6], &typev1.ImportRowError{Field: "active", Reason: importer.ReasonMissingColumn}
		case 2:
			row[3] = "WEEKLY"
			return row, &typev1.ImportRowError{Field: "billingPeriod", Reason: importer.ReasonInvalidEnum}
		case 3:
			row[0] = strings.ToUpper(earlier[i%len(earlier)])
			return row, &typev1.ImportRowError{Reason: importer.ReasonDuplicate}
		}
		row[1] = "Bad\xff\xfeName"
		return row, &typev1.ImportRowError{Field: "displayName", Reason: importer.ReasonInvalidUTF8}
	})
}

// productCells are a product's imported columns as the generated file writes them.
func productCells(p *productv1.Product) []string {
	price := p.GetPrice()
	return []string{p.GetSku(), p.GetDisplayName(), fmt.Sprintf("%d.%02d %s", price.GetUnits(), price.GetNanos()/10_000_000, price.GetCurrencyCode()),
		p.GetBillingPeriod().String(), p.GetCategory(), strings.Join(p.GetFeatures(), ";"), fmt.Sprint(p.GetActive())}
}

// exportedProducts reads an NDJSON export of the products by lower-case SKU.
func exportedProducts(t *testing.T, sys *system, key, filter string) map[string][]string {
	t.Helper()
	r := sys.Do(t, http.MethodGet, "/v1/products:export?filter="+url.QueryEscape(filter), key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("export: %d %s", r.Status, r.Body)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p := &productv1.Product{}
		if err := protojson.Unmarshal(sc.Bytes(), p); err != nil {
			t.Fatal(err)
		}
		out[strings.ToLower(p.GetSku())] = productCells(p)
	}
	return out
}

// TestImportProductsCSV: a generated CSV (10,000 rows; 30,000 under the long flag) with 1 %
// malformed rows imports with the computed counts and errors; the export equals the file's valid
// rows, whole and under a filter; the same file again, and the CSV export itself imported back,
// change nothing; another tenant's import of the file's start makes its own products and cannot
// see the operation.
func TestImportProductsCSV(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	tenant, key := sys.NewKey(t, "", importScopes...)
	f := genProducts(servicetest.Size(10_000, 30_000), 1)

	op, meta := sys.Import(t, "/v1/products:import", key, "text/csv", f.CSV)
	if !op.GetDone() || op.GetError() != nil || !strings.HasPrefix(op.GetName(), "operations/product.") {
		t.Fatalf("operation %v", op)
	}
	gatewaytest.CheckImport(t, "first import", meta, gatewaytest.ImportWant{Rows: f.Rows, Created: len(f.Valid), Errors: f.Errors})
	for _, c := range []struct {
		filter string
		keep   func([]string) bool
	}{
		{"", func([]string) bool { return true }},
		{`category = "apps"`, func(row []string) bool { return row[4] == "apps" }},
	} {
		got := exportedProducts(t, sys, key, c.filter)
		n := 0
		for sku, want := range f.Valid {
			if !c.keep(want) {
				continue
			}
			n++
			if strings.Join(got[sku], "|") != strings.Join(want, "|") {
				t.Fatalf("export %q: %q = %q, want %q", c.filter, sku, got[sku], want)
			}
		}
		if len(got) != n {
			t.Fatalf("export %q: %d products, want %d", c.filter, len(got), n)
		}
	}

	before := sys.OKBytes(t, http.MethodGet, "/v1/products:export", key, nil)
	keys, events := sys.Suite.Footprint(t, server.Name, tenant)
	_, again := sys.Import(t, "/v1/products:import", key, "text/csv", f.CSV)
	gatewaytest.CheckImport(t, "second import", again, gatewaytest.ImportWant{Rows: f.Rows, Skipped: len(f.Valid), Errors: f.Errors})
	// The CSV export (price as JSON money, every column of the product) imports back as it is.
	exportCSV := sys.OKBytes(t, http.MethodGet, "/v1/products:export", key, http.Header{"Accept": {"text/csv"}})
	_, back := sys.Import(t, "/v1/products:import", key, "text/csv", exportCSV)
	gatewaytest.CheckImport(t, "the CSV export imported", back, gatewaytest.ImportWant{Rows: len(f.Valid), Skipped: len(f.Valid)})
	if k, e := sys.Suite.Footprint(t, server.Name, tenant); k != keys+2 || e != events+1 {
		// Two operation records, one audit event (the CSV export): nothing else.
		t.Fatalf("the same rows again: %d keys %d events, before %d %d", k, e, keys, events)
	}
	if after := sys.OKBytes(t, http.MethodGet, "/v1/products:export", key, nil); !bytes.Equal(after, before) {
		t.Fatal("the same rows again changed products")
	}

	_, other := sys.NewKey(t, "", importScopes...)
	head := genProducts(300, 1) // the start of the same file: the same SKUs
	otherOp, otherMeta := sys.Import(t, "/v1/products:import", other, "text/csv", head.CSV)
	gatewaytest.CheckImport(t, "other tenant", otherMeta, gatewaytest.ImportWant{Rows: head.Rows, Created: len(head.Valid), Errors: head.Errors})
	for _, c := range []struct{ key, name string }{{other, op.GetName()}, {key, otherOp.GetName()}} {
		if r := sys.Do(t, http.MethodGet, "/v1/"+c.name, c.key, nil); r.Status != http.StatusNotFound {
			t.Fatalf("another tenant's GET %s: %d %s", c.name, r.Status, r.Body)
		}
	}
	got, _ := gatewaytest.DecodeOperation(t, sys.OKBytes(t, http.MethodGet, "/v1/"+op.GetName(), key, nil))
	if !proto.Equal(got, op) {
		t.Fatalf("GET %s = %v, want %v", op.GetName(), got, op)
	}
}

// TestImportProductsUpdates: an NDJSON row updates the product of its SKU in any case (name,
// price as an object, its non-empty values) and leaves the rest; an archived product's change is
// the row's error; a price with too many decimals is refused.
func TestImportProductsUpdates(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", importScopes...)
	pro := sys.createProduct(t, key, `{"sku":"PRO-1","displayName":"Pro","price":{"currencyCode":"USD","units":"10"},"category":"apps","tier":2}`)
	old := sys.createProduct(t, key, `{"sku":"OLD-1","displayName":"Old","price":{"currencyCode":"USD","units":"5"}}`)
	sys.OK(t, http.MethodPost, "/v1/products/"+old["id"].(string)+":archive", key, `{}`)

	body := `{"sku":"pro-1","displayName":"Pro 2","price":{"currencyCode":"USD","units":"12","nanos":500000000},"features":["sso"]}
{"sku":"old-1","displayName":"Older","price":"5 USD"}
{"sku":"new-1","displayName":"New","price":"USD 0.001"}
{"sku":"bad-1","displayName":"Bad","price":"1.0000000001 USD"}
`
	_, meta := sys.Import(t, "/v1/products:import", key, "application/x-ndjson", []byte(body))
	gatewaytest.CheckImport(t, "import", meta, gatewaytest.ImportWant{Rows: 4, Created: 1, Updated: 1, Errors: []*typev1.ImportRowError{
		{Line: 2, Field: "sku", Reason: importer.ReasonConflict}, {Line: 4, Field: "price", Reason: importer.ReasonInvalidValue}}})
	client, ctx := sys.product(key)
	got, err := client.GetProduct(ctx, &productv1.GetProductRequest{Id: pro["id"].(string)})
	p := got.GetProduct()
	if err != nil || p.GetSku() != "PRO-1" || p.GetDisplayName() != "Pro 2" || p.GetPrice().GetUnits() != 12 || p.GetPrice().GetNanos() != 500_000_000 ||
		p.GetCategory() != "apps" || p.GetTier() != 2 || strings.Join(p.GetFeatures(), ";") != "sso" {
		t.Fatalf("updated product: %v %v", p, err)
	}
	list, err := client.ListProducts(ctx, &productv1.ListProductsRequest{Filter: `sku:"new-1*"`})
	if err != nil || len(list.GetProducts()) != 1 || list.GetProducts()[0].GetPrice().GetNanos() != 1_000_000 || !list.GetProducts()[0].GetActive() {
		t.Fatalf("created product: %v %v", list, err)
	}
}

// TestImportProductsRefusals: a wrong content type is 415 and a body over the gateway's import
// limit 413; neither starts an operation or writes anything.
func TestImportProductsRefusals(t *testing.T) {
	sys := startSystem(t)
	small := gatewaytest.Start(t, sys.Suite, gateway.Config{MaxImportBytes: 4 << 10})
	tenant, key := sys.NewKey(t, "", importScopes...)
	keys, events := sys.Suite.Footprint(t, server.Name, tenant)
	if r := sys.DoWith(t, http.MethodPost, "/v1/products:import", key, []byte(`{"sku":"A"}`), http.Header{"Content-Type": {"application/json"}}); r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body: %d %s, want 415", r.Status, r.Body)
	}
	big := genProducts(200, 9).CSV
	if r := small.DoWith(t, http.MethodPost, "/v1/products:import", key, big, http.Header{"Content-Type": {"text/csv"}}); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("%d bytes over a 4 KiB limit: %d %s, want 413", len(big), r.Status, r.Body)
	}
	if k, e := sys.Suite.Footprint(t, server.Name, tenant); k != keys || e != events {
		t.Fatalf("refused imports wrote: %d keys %d events, before %d %d", k, e, keys, events)
	}
}
