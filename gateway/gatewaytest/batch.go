package gatewaytest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// CheckBatchGet checks a :batchGet route (AIP-231) over REST with the ids of resources the key's
// tenant has: the resources come back in the order asked (a repeated id twice); an unknown id
// makes the call 404 with the unknown ids in "missing_ids"; another tenant's key gets 404 for the
// same ids; no id, more than 1,000 or a malformed id is 400 naming "ids".
func (e *Edge) CheckBatchGet(t *testing.T, plural, key, stranger string, ids []string) {
	t.Helper()
	path := "/v1/" + plural + ":batchGet?"
	query := func(ids []string) string { return url.Values{"ids": ids}.Encode() }
	asked := append(slices.Clone(ids), ids[0])
	slices.Reverse(asked)
	r := e.Do(t, http.MethodGet, path+query(asked), key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: %d %s", plural, r.Status, r.Body)
	}
	items, _ := r.JSON(t)[plural].([]any)
	var got []string
	for _, it := range items {
		got = append(got, it.(map[string]any)["id"].(string))
	}
	if !slices.Equal(got, asked) {
		t.Errorf("%s: got %v, want %v", plural, got, asked)
	}
	unknown := uuid.Must(uuid.NewV7()).String()
	details := e.Fails(t, http.MethodGet, path+query([]string{ids[0], unknown}), key, "", http.StatusNotFound, "NOT_FOUND")
	if m := ErrorMetadata(details); m["missing_ids"] != unknown {
		t.Errorf("%s with an unknown id: metadata %v, want missing_ids %s", plural, m, unknown)
	}
	details = e.Fails(t, http.MethodGet, path+query(ids), stranger, "", http.StatusNotFound, "NOT_FOUND")
	if m := ErrorMetadata(details); m["missing_ids"] != strings.Join(ids, ",") {
		t.Errorf("%s with another tenant's key: metadata %v, want every id missing", plural, m)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = ids[0]
	}
	for _, bad := range [][]string{nil, many, {ids[0], "not-an-id"}} {
		r := e.Do(t, http.MethodGet, path+query(bad), key, nil)
		if r.Status != http.StatusBadRequest || !slices.ContainsFunc(r.FieldViolations(t), func(f string) bool { return strings.HasPrefix(f, "ids") }) {
			t.Errorf("%s with %d ids: %d %s, want 400 naming ids", plural, len(bad), r.Status, r.Body)
		}
	}
}
