package rpc_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// listNps walks GET /v1/npsResponses page by page and returns the ids in the order served.
func listNps(t *testing.T, sys *system, key, filter string, pageSize int) []map[string]any {
	t.Helper()
	var out []map[string]any
	token := ""
	for range 100 {
		q := url.Values{"pageSize": {fmt.Sprint(pageSize)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		r := sys.Do(t, http.MethodGet, "/v1/npsResponses?"+q.Encode(), key, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list %q: %d %s", filter, r.Status, r.Body)
		}
		body := r.JSON(t)
		items, _ := body["npsResponses"].([]any)
		if len(items) > pageSize {
			t.Fatalf("a page of %d answers, asked for %d", len(items), pageSize)
		}
		for _, it := range items {
			out = append(out, it.(map[string]any))
		}
		if token, _ = body["nextPageToken"].(string); token == "" {
			return out
		}
	}
	t.Fatal("more than 100 pages")
	return nil
}

func ids(answers []map[string]any) []string {
	out := make([]string, len(answers))
	for i, a := range answers {
		out[i] = a["id"].(string)
	}
	return out
}

func TestNpsResponsesListNewestFirstByCustomer(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", supportScopes...)
	_, foreign := sys.NewKey(t, "", supportScopes...)
	ann, bob := uuid.NewString(), uuid.NewString()

	// Recorded one at a time: the ids are time-ordered, so the order recorded is the order listed.
	var recorded []string
	byCustomer := map[string][]string{}
	for i, c := range []string{ann, bob, ann, ann, bob, ann, bob, ann} {
		r := sys.Do(t, http.MethodPost, "/v1/npsResponses", key, fmt.Appendf(nil, `{"customerId":%q,"score":%d,"comment":"answer %d"}`, c, i, i))
		if r.Status != http.StatusOK {
			t.Fatalf("record: %d %s", r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		recorded = append(recorded, id)
		byCustomer[c] = append(byCustomer[c], id)
	}
	newestFirst := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }

	if got := ids(listNps(t, sys, key, "", 3)); !slices.Equal(got, newestFirst(recorded)) {
		t.Fatalf("all answers in pages of 3: %v, want %v", got, newestFirst(recorded))
	}
	for _, c := range []string{ann, bob} {
		for _, filter := range []string{fmt.Sprintf("customerId=%q", c), fmt.Sprintf("customer_id = %q", c)} {
			got := listNps(t, sys, key, filter, 2)
			if !slices.Equal(ids(got), newestFirst(byCustomer[c])) {
				t.Fatalf("%s: %v, want %v", filter, ids(got), newestFirst(byCustomer[c]))
			}
			for _, a := range got {
				if a["customerId"] != c || a["category"] == nil || a["createTime"] == nil {
					t.Fatalf("%s lists %v", filter, a)
				}
			}
		}
	}
	if got := listNps(t, sys, key, fmt.Sprintf("customerId=%q", uuid.NewString()), 10); len(got) != 0 {
		t.Fatalf("a customer without answers: %v", got)
	}

	// Bad filters: 400 naming the filter, whatever the field.
	for _, filter := range []string{"score = 9", `customerId="not-a-uuid"`, `customerId != "` + ann + `"`, "customerId="} {
		r := sys.Do(t, http.MethodGet, "/v1/npsResponses?filter="+url.QueryEscape(filter), key, nil)
		if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "INVALID_ARGUMENT" || !slices.Contains(r.FieldViolations(t), "filter") {
			t.Errorf("filter %q: %d %s, want 400 with a violation on filter", filter, r.Status, r.Body)
		}
	}

	// Another tenant sees none of it, and cannot use the owner's page token.
	if got := listNps(t, sys, foreign, "", 50); len(got) != 0 {
		t.Fatalf("another tenant lists %d answers", len(got))
	}
	if got := listNps(t, sys, foreign, fmt.Sprintf("customerId=%q", ann), 50); len(got) != 0 {
		t.Fatalf("another tenant lists %d of the customer's answers", len(got))
	}
	first := sys.Do(t, http.MethodGet, "/v1/npsResponses?pageSize=1", key, nil).JSON(t)
	if r := sys.Do(t, http.MethodGet, "/v1/npsResponses?pageSize=1&pageToken="+url.QueryEscape(first["nextPageToken"].(string)), foreign, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("the owner's page token with another key: %d %s, want 400", r.Status, r.Body)
	}

	// gRPC: the same list, and answers recorded at once are all listed once.
	c, ctx := sys.support(key)
	carl := uuid.NewString()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := c.RecordNpsResponse(ctx, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{CustomerId: carl, Score: int32(i)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	resp, err := c.ListNpsResponses(ctx, &supportv1.ListNpsResponsesRequest{Filter: fmt.Sprintf("customer_id = %q", carl), PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	scores := map[int32]bool{}
	for _, a := range resp.GetNpsResponses() {
		scores[a.GetScore()] = a.GetCustomerId() == carl
	}
	if len(resp.GetNpsResponses()) != 10 || len(scores) != 10 || resp.GetNextPageToken() != "" {
		t.Fatalf("10 answers recorded at once: listed %d (%d distinct scores)", len(resp.GetNpsResponses()), len(scores))
	}
	if _, err := c.ListNpsResponses(ctx, &supportv1.ListNpsResponsesRequest{Filter: "comment = \"x\""}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC list with a filter on comment: %v, want InvalidArgument", err)
	}
}
