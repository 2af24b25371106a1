// Command goclient drives the marketing API through a Go client that oapi-codegen generated from
// /openapi.json (client.gen.go, written by the test next to this file, never committed): the flow
// a team would write, with no hand edits to the generated code. It prints one line per step and
// exits 1 at the first step that fails.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/google/uuid"
)

func main() {
	url := flag.String("url", "", "gateway base URL")
	key := flag.String("key", "", "API key")
	limitedURL := flag.String("limited-url", "", "gateway whose rate limit is tiny")
	limitedKey := flag.String("limited-key", "", "API key on the limited gateway")
	flag.Parse()
	if err := run(context.Background(), *url, *key, *limitedURL, *limitedKey); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func client(url, key string) (*ClientWithResponses, error) {
	return NewClientWithResponses(url, WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}))
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func run(ctx context.Context, url, key, limitedURL, limitedKey string) error {
	c, err := client(url, key)
	if err != nil {
		return err
	}

	// Capture, then the same capture again with the same Idempotency-Key: replayed as is.
	idem := IdempotencyKey("go-client-capture-1")
	body := MarketingServiceCaptureLeadJSONRequestBody{Email: "ada@go.example", GivenName: ptr("Ada"), Tags: &[]string{"goflow"}}
	first, err := c.MarketingServiceCaptureLeadWithResponse(ctx, &MarketingServiceCaptureLeadParams{IdempotencyKey: &idem}, body)
	if err != nil || first.JSON200 == nil {
		return fmt.Errorf("capture: %v %s", err, bodyOf(first))
	}
	again, err := c.MarketingServiceCaptureLeadWithResponse(ctx, &MarketingServiceCaptureLeadParams{IdempotencyKey: &idem}, body)
	if err != nil || again.JSON200 == nil || !bytes.Equal(first.Body, again.Body) {
		return fmt.Errorf("idempotent retry: %v %s / %s", err, first.Body, bodyOf(again))
	}
	fmt.Println("ok capture and idempotent retry")
	id := uuid.MustParse(*first.JSON200.Id)

	got, err := c.MarketingServiceGetLeadWithResponse(ctx, id, nil)
	if err != nil || got.JSON200 == nil || got.JSON200.Email != "ada@go.example" || got.HTTPResponse.Header.Get("ETag") == "" {
		return fmt.Errorf("get: %v %s", err, bodyOf(got))
	}
	etag := got.HTTPResponse.Header.Get("ETag")
	fmt.Println("ok get with ETag", etag)

	// A filtered list, two pages.
	for _, email := range []string{"grace@go.example", "hedy@go.example"} {
		r, err := c.MarketingServiceCaptureLeadWithResponse(ctx, nil, MarketingServiceCaptureLeadJSONRequestBody{Email: email, Tags: &[]string{"goflow"}})
		if err != nil || r.JSON200 == nil {
			return fmt.Errorf("capture %s: %v %s", email, err, bodyOf(r))
		}
	}
	c.MarketingServiceCaptureLeadWithResponse(ctx, nil, MarketingServiceCaptureLeadJSONRequestBody{Email: "other@go.example"})
	var listed []string
	var token *string
	for page := 1; page <= 2; page++ {
		r, err := c.MarketingServiceListLeadsWithResponse(ctx, &MarketingServiceListLeadsParams{
			Filter: ptr(`tags:"goflow"`), PageSize: ptr(int32(2)), PageToken: token})
		if err != nil || r.JSON200 == nil || r.JSON200.Leads == nil {
			return fmt.Errorf("list page %d: %v %s", page, err, bodyOf(r))
		}
		for _, l := range *r.JSON200.Leads {
			listed = append(listed, l.Email)
		}
		token = r.JSON200.NextPageToken
		if (page == 1) != (token != nil && *token != "") {
			return fmt.Errorf("page %d: next page token %v", page, token)
		}
	}
	slices.Sort(listed)
	if want := []string{"ada@go.example", "grace@go.example", "hedy@go.example"}; !slices.Equal(listed, want) {
		return fmt.Errorf("filtered list over two pages: %v, want %v", listed, want)
	}
	fmt.Println("ok filtered list, two pages")

	// PATCH with updateMask and If-Match; the same If-Match again is stale: 412.
	patch := MarketingServiceUpdateLeadJSONRequestBody{Company: ptr("Analytical Engines")}
	params := &MarketingServiceUpdateLeadParams{UpdateMask: ptr("company"), IfMatch: &etag}
	upd, err := c.MarketingServiceUpdateLeadWithResponse(ctx, id, params, patch)
	if err != nil || upd.JSON200 == nil || upd.JSON200.Company == nil || *upd.JSON200.Company != "Analytical Engines" || upd.JSON200.GivenName == nil {
		return fmt.Errorf("patch: %v %s", err, bodyOf(upd))
	}
	stale, err := c.MarketingServiceUpdateLeadWithResponse(ctx, id, params, patch)
	if err != nil || stale.JSON412 == nil || stale.JSON412.Error.Code != 412 {
		return fmt.Errorf("patch with a stale If-Match: %v %s", err, bodyOf(stale))
	}
	fmt.Println("ok patch with updateMask and If-Match, 412 when stale")

	// Typed errors: 400 with the field, 404.
	bad, err := c.MarketingServiceCaptureLeadWithResponse(ctx, nil, MarketingServiceCaptureLeadJSONRequestBody{
		Email: "long@go.example", GivenName: ptr(strings.Repeat("x", 101))})
	if err != nil || bad.JSON400 == nil || bad.JSON400.Error.Status != INVALIDARGUMENT || !violates(bad.JSON400, "lead.givenName") {
		return fmt.Errorf("typed 400: %v %s", err, bodyOf(bad))
	}
	missing, err := c.MarketingServiceGetLeadWithResponse(ctx, uuid.Must(uuid.NewV7()), nil)
	if err != nil || missing.JSON404 == nil || missing.JSON404.Error.Status != NOTFOUND {
		return fmt.Errorf("typed 404: %v %s", err, bodyOf(missing))
	}
	fmt.Println("ok typed 400 and 404")

	// Import a CSV (the body is the file, streamed from a reader) with a column renamed: one row
	// written, one failing on its e-mail; then the operation read back by its name, and listed.
	csv := "E-mail,givenName,tags\nimp@go.example,Imp,goimport\nnot-an-email,Bad,goimport\n"
	imp, err := c.MarketingServiceImportLeadsWithBodyWithResponse(ctx, &MarketingServiceImportLeadsParams{ColumnMapping: &[]string{"E-mail=email"}},
		"text/csv", strings.NewReader(csv))
	if err != nil || imp.JSON200 == nil || imp.JSON200.Done == nil || !*imp.JSON200.Done || imp.JSON200.Response == nil {
		return fmt.Errorf("import: %v %s", err, bodyOf(imp))
	}
	res := imp.JSON200.Response
	if res.State == nil || *res.State != OperationResponseStateIMPORTSTATESUCCEEDED || deref(res.Created) != "1" || deref(res.Failed) != "1" ||
		res.Errors == nil || len(*res.Errors) != 1 || deref((*res.Errors)[0].Line) != "3" || deref((*res.Errors)[0].Reason) != "INVALID_EMAIL" {
		return fmt.Errorf("import: %s", imp.Body)
	}
	name := strings.TrimPrefix(imp.JSON200.Name, "operations/")
	op, err := c.OperationsGetOperationWithResponse(ctx, name, nil)
	if err != nil || op.JSON200 == nil || op.JSON200.Name != imp.JSON200.Name || op.JSON200.Response == nil || deref(op.JSON200.Response.Created) != "1" {
		return fmt.Errorf("read the operation %s: %v %s", name, err, bodyOf(op))
	}
	ops, err := c.OperationsListOperationsWithResponse(ctx, &OperationsListOperationsParams{PageSize: ptr(int32(10))})
	if err != nil || ops.JSON200 == nil || ops.JSON200.Operations == nil ||
		!slices.ContainsFunc(*ops.JSON200.Operations, func(o Operation) bool { return o.Name == imp.JSON200.Name }) {
		return fmt.Errorf("list the operations: %v %s", err, bodyOf(ops))
	}
	refused, err := c.MarketingServiceImportLeadsWithBodyWithResponse(ctx, nil, "application/json", strings.NewReader(csv))
	if err != nil || refused.StatusCode() != http.StatusUnsupportedMediaType {
		return fmt.Errorf("import refused: %v %s", err, bodyOf(refused))
	}
	fmt.Println("ok import a CSV and read its operation")

	// 429 with Retry-After on a gateway whose limit is tiny.
	lc, err := client(limitedURL, limitedKey)
	if err != nil {
		return err
	}
	for range 20 {
		r, err := lc.MarketingServiceListLeadsWithResponse(ctx, nil)
		if err != nil {
			return err
		}
		if r.JSON429 != nil {
			if r.JSON429.Error.Status != RESOURCEEXHAUSTED || r.HTTPResponse.Header.Get("Retry-After") == "" {
				return fmt.Errorf("429: %s %v", r.Body, r.HTTPResponse.Header)
			}
			fmt.Println("ok 429 with Retry-After")
			return nil
		}
	}
	return fmt.Errorf("no 429 in 20 rapid calls")
}

func violates(e *Error, field string) bool {
	for _, d := range *e.Error.Details {
		if d.FieldViolations != nil {
			for _, v := range *d.FieldViolations {
				if v.Field == field {
					return true
				}
			}
		}
	}
	return false
}

// bodyOf describes a response for a failure message; a call that failed has none.
func bodyOf(r interface{ StatusCode() int }) (s string) {
	defer func() {
		if recover() != nil {
			s = "(no response)"
		}
	}()
	return fmt.Sprint("status ", r.StatusCode())
}
