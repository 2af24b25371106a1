package rpc_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

func TestProductCatalogOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")

	p := sys.createProduct(t, key, productBody("CRM-PRO", "CRM Pro", "BILLING_PERIOD_MONTHLY"))
	id := p["id"].(string)
	if p["active"] != true || p["etag"] != "1" || p["sku"] != "CRM-PRO" {
		t.Fatalf("created = %v", p)
	}
	if got := sys.Do(t, http.MethodGet, "/v1/products/"+id, key, nil); got.Status != http.StatusOK || got.JSON(t)["id"] != id {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}

	dup := sys.Do(t, http.MethodPost, "/v1/products", key, []byte(productBody("CRM-PRO", "Other", "BILLING_PERIOD_YEARLY")))
	if dup.Status != http.StatusConflict || dup.ErrorStatus(t) != "ALREADY_EXISTS" || !bytes.Contains(dup.Body, []byte(id)) {
		t.Fatalf("duplicate SKU: %d %s, want 409 ALREADY_EXISTS naming %s", dup.Status, dup.Body, id)
	}

	upd := sys.Do(t, http.MethodPatch, "/v1/products/"+id+"?updateMask=displayName,tier", key,
		[]byte(`{"displayName":"CRM Professional","tier":2,"sku":"IGNORED","etag":"1"}`))
	if upd.Status != http.StatusOK || upd.JSON(t)["displayName"] != "CRM Professional" || upd.JSON(t)["tier"] != float64(2) ||
		upd.JSON(t)["sku"] != "CRM-PRO" || upd.JSON(t)["etag"] != "2" {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	stale := sys.Do(t, http.MethodPatch, "/v1/products/"+id+"?updateMask=displayName", key, []byte(`{"displayName":"x","etag":"1"}`))
	if stale.Status != http.StatusConflict || stale.ErrorStatus(t) != "ABORTED" {
		t.Fatalf("stale etag: %d %s", stale.Status, stale.Body)
	}

	quote := sys.Do(t, http.MethodPost, "/v1/products:quote", key, fmt.Appendf(nil,
		`{"currencyCode":"EUR","items":[{"productId":%q,"quantity":3,"discountPercent":10}]}`, id))
	if quote.Status != http.StatusOK {
		t.Fatalf("quote: %d %s", quote.Status, quote.Body)
	}
	// 3 x 10.50 = 31.50, less 10 % = 28.35.
	if total := quote.JSON(t)["total"].(map[string]any); total["units"] != "28" || total["nanos"] != float64(350000000) {
		t.Fatalf("quote total = %v, want 28.35", total)
	}

	arch := sys.Do(t, http.MethodPost, "/v1/products/"+id+":archive", key, []byte(`{}`))
	if arch.Status != http.StatusOK || arch.JSON(t)["active"] != false || arch.JSON(t)["archiveTime"] == nil {
		t.Fatalf("archive: %d %s", arch.Status, arch.Body)
	}
	archived := sys.Do(t, http.MethodPost, "/v1/products:quote", key, fmt.Appendf(nil,
		`{"currencyCode":"EUR","items":[{"productId":%q,"quantity":1}]}`, id))
	if archived.Status != http.StatusBadRequest || archived.ErrorStatus(t) != "FAILED_PRECONDITION" ||
		fmt.Sprint(archived.FieldViolations(t)) != "[items[0].productId]" {
		t.Fatalf("quote of an archived product: %d %s", archived.Status, archived.Body)
	}
	if r := sys.Do(t, http.MethodPatch, "/v1/products/"+id+"?updateMask=displayName", key, []byte(`{"displayName":"x"}`)); r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" {
		t.Fatalf("update of an archived product: %d %s", r.Status, r.Body)
	}
}

func TestProductCatalogErrorsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	_, readOnly := sys.NewKey(t, "", "product.read")
	id := sys.createProduct(t, key, productBody("ONE", "One", "BILLING_PERIOD_ONE_TIME"))["id"].(string)
	missing := uuid.NewString()

	for _, tc := range []struct {
		name, method, path, key, body string
		code                          int
		status                        string
	}{
		{"no key", "GET", "/v1/products/" + id, "", "", 401, "UNAUTHENTICATED"},
		{"read-only key writes", "POST", "/v1/products", readOnly, productBody("X", "X", "BILLING_PERIOD_MONTHLY"), 403, "PERMISSION_DENIED"},
		{"missing sku", "POST", "/v1/products", key, `{"displayName":"x","price":{"currencyCode":"EUR","units":"1"}}`, 400, "INVALID_ARGUMENT"},
		{"negative price", "POST", "/v1/products", key, `{"sku":"N","displayName":"x","price":{"currencyCode":"EUR","units":"-1"}}`, 400, "INVALID_ARGUMENT"},
		{"two prices in a currency", "POST", "/v1/products", key, `{"sku":"D","displayName":"x","price":{"currencyCode":"EUR","units":"1"},"additionalPrices":[{"currencyCode":"EUR","units":"2"}]}`, 400, "INVALID_ARGUMENT"},
		{"bad id", "GET", "/v1/products/nope", key, "", 400, "INVALID_ARGUMENT"},
		{"unknown product", "GET", "/v1/products/" + missing, key, "", 404, "NOT_FOUND"},
		{"update unknown", "PATCH", "/v1/products/" + missing + "?updateMask=displayName", key, `{"displayName":"x"}`, 404, "NOT_FOUND"},
		{"update the sku", "PATCH", "/v1/products/" + id + "?updateMask=sku", key, `{"sku":"Y"}`, 400, "INVALID_ARGUMENT"},
		{"archive unknown", "POST", "/v1/products/" + missing + ":archive", key, `{}`, 404, "NOT_FOUND"},
		{"bad filter", "GET", "/v1/products?filter=price%3D1", key, "", 400, "INVALID_ARGUMENT"},
		{"forged page token", "GET", "/v1/products?pageToken=abc", key, "", 400, "INVALID_ARGUMENT"},
		{"quote without items", "POST", "/v1/products:quote", key, `{"currencyCode":"EUR","items":[]}`, 400, "INVALID_ARGUMENT"},
		{"quote an unknown product", "POST", "/v1/products:quote", key, `{"currencyCode":"EUR","items":[{"productId":"` + missing + `","quantity":1}]}`, 400, "FAILED_PRECONDITION"},
		{"quote in an unpriced currency", "POST", "/v1/products:quote", key, `{"currencyCode":"JPY","items":[{"productId":"` + id + `","quantity":1}]}`, 400, "FAILED_PRECONDITION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			r := sys.Do(t, tc.method, tc.path, tc.key, body)
			if r.Status != tc.code || r.ErrorStatus(t) != tc.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.code, tc.status)
			}
		})
	}
}

func TestProductListFiltersAndPages(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	want := map[string][]string{}
	for i := range 7 {
		period := []string{"BILLING_PERIOD_MONTHLY", "BILLING_PERIOD_YEARLY", "BILLING_PERIOD_ONE_TIME"}[i%3]
		name := fmt.Sprintf("%s %d", []string{"Alpha", "Beta"}[i%2], i)
		id := sys.createProduct(t, key, productBody(fmt.Sprint("SKU-", i), name, period))["id"].(string)
		want[period] = append(want[period], id)
		if i%2 == 0 {
			want["alpha"] = append(want["alpha"], id)
		}
	}
	ids := func(filter string) []string {
		var out []string
		token := ""
		for {
			r := sys.Do(t, http.MethodGet, "/v1/products?pageSize=2&filter="+filter+"&pageToken="+token, key, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("list %s: %d %s", filter, r.Status, r.Body)
			}
			m := r.JSON(t)
			ps, _ := m["products"].([]any)
			for _, p := range ps {
				out = append(out, p.(map[string]any)["id"].(string))
			}
			next, _ := m["nextPageToken"].(string)
			if next == "" {
				return out
			}
			token = next
		}
	}
	reversed := func(s []string) []string {
		out := make([]string, len(s))
		for i, v := range s {
			out[len(s)-1-i] = v
		}
		return out
	}
	if got := ids("billing_period%3DBILLING_PERIOD_MONTHLY"); !cmp.Equal(got, reversed(want["BILLING_PERIOD_MONTHLY"])) {
		t.Errorf("monthly = %v, want %v", got, reversed(want["BILLING_PERIOD_MONTHLY"]))
	}
	if got := ids("display_name%3D%22alp*%22"); !cmp.Equal(got, want["alpha"]) {
		t.Errorf("name prefix alp = %v, want %v (by name)", got, want["alpha"])
	}
	if got := ids("category%3D%22crm%22"); len(got) != 7 {
		t.Errorf("category crm: %d products, want 7", len(got))
	}
	if got := ids("active%3Dfalse"); len(got) != 0 {
		t.Errorf("inactive: %v, want none", got)
	}
}

func TestProductCatalogOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	client, ctx := sys.product(key)
	eur := func(units int64, nanos int32) *typev1.Money {
		return &typev1.Money{CurrencyCode: "EUR", Units: units, Nanos: nanos}
	}
	created, err := client.CreateProduct(ctx, &productv1.CreateProductRequest{Product: &productv1.Product{
		Sku: "G-1", DisplayName: "Gadget", Price: eur(0, 333333333), BillingPeriod: productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME,
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.GetProduct(ctx, &productv1.GetProductRequest{Id: created.GetProduct().GetId()})
	if err != nil || !cmp.Equal(got.GetProduct(), created.GetProduct(), protocmp.Transform()) {
		t.Fatalf("get = %v, %v; want %v", got, err, created)
	}
	// 7 x 0.333333333 = 2.333333331, less 33 % = 1.56333333177 -> 1.563333331 rounded down.
	q, err := client.QuoteLineItems(ctx, &productv1.QuoteLineItemsRequest{CurrencyCode: "EUR", Items: []*productv1.QuoteItem{
		{ProductId: created.GetProduct().GetId(), Quantity: 7, DiscountPercent: 33},
		{ProductId: created.GetProduct().GetId(), Quantity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(eur(1, 563333331), q.GetLines()[0].GetTotal(), protocmp.Transform()); diff != "" {
		t.Errorf("line total (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(eur(1, 896666664), q.GetTotal(), protocmp.Transform()); diff != "" {
		t.Errorf("quote total (-want +got):\n%s", diff)
	}
	_, err = client.QuoteLineItems(ctx, &productv1.QuoteLineItemsRequest{CurrencyCode: "EUR", Items: []*productv1.QuoteItem{
		{ProductId: created.GetProduct().GetId(), Quantity: 1}, {ProductId: uuid.NewString(), Quantity: 1},
	}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("quote with an unknown product: %v, want FAILED_PRECONDITION", err)
	}
	id := created.GetProduct().GetId()
	updated, err := client.UpdateProduct(ctx, &productv1.UpdateProductRequest{
		Product:    &productv1.Product{Id: id, Category: "gadgets", Etag: "1"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"category"}},
	})
	if err != nil || updated.GetProduct().GetCategory() != "gadgets" || updated.GetProduct().GetEtag() != "2" {
		t.Fatalf("update = %v, %v", updated, err)
	}
	listed, err := client.ListProducts(ctx, &productv1.ListProductsRequest{Filter: `category = "gadgets"`})
	if err != nil || len(listed.GetProducts()) != 1 || listed.GetProducts()[0].GetId() != id {
		t.Fatalf("list by category = %v, %v", listed, err)
	}
	archived, err := client.ArchiveProduct(ctx, &productv1.ArchiveProductRequest{Id: id, Etag: "2"})
	if err != nil || archived.GetProduct().GetActive() || archived.GetProduct().GetArchiveTime() == nil {
		t.Fatalf("archive = %v, %v", archived, err)
	}
	for _, call := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"archive stale", second(client.ArchiveProduct(ctx, &productv1.ArchiveProductRequest{Id: id, Etag: "1"})), codes.Aborted},
		{"update archived", second(client.UpdateProduct(ctx, &productv1.UpdateProductRequest{Product: &productv1.Product{Id: id, DisplayName: "y"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})), codes.FailedPrecondition},
		{"quote archived", second(client.QuoteLineItems(ctx, &productv1.QuoteLineItemsRequest{CurrencyCode: "EUR",
			Items: []*productv1.QuoteItem{{ProductId: id, Quantity: 1}}})), codes.FailedPrecondition},
		{"get unknown", second(client.GetProduct(ctx, &productv1.GetProductRequest{Id: uuid.NewString()})), codes.NotFound},
		{"create invalid", second(client.CreateProduct(ctx, &productv1.CreateProductRequest{Product: &productv1.Product{Sku: "x"}})), codes.InvalidArgument},
		{"create duplicate", second(client.CreateProduct(ctx, &productv1.CreateProductRequest{Product: &productv1.Product{Sku: "G-1", DisplayName: "x", Price: eur(1, 0)}})), codes.AlreadyExists},
		{"update stale", second(client.UpdateProduct(ctx, &productv1.UpdateProductRequest{Product: &productv1.Product{Id: created.GetProduct().GetId(), DisplayName: "y", Etag: "9"}})), codes.Aborted},
		{"archive unknown", second(client.ArchiveProduct(ctx, &productv1.ArchiveProductRequest{Id: uuid.NewString()})), codes.NotFound},
		{"list bad filter", second(client.ListProducts(ctx, &productv1.ListProductsRequest{Filter: "tier = 3"})), codes.InvalidArgument},
	} {
		if status.Code(call.err) != call.want {
			t.Errorf("%s: %v, want %v", call.name, call.err, call.want)
		}
	}
}
