package gatewaytest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// CheckExport checks an export route over REST: NDJSON by default and CSV on Accept: text/csv
// hold exactly the records with ids want (those the filter selects); another tenant's key gets an
// empty export; a key without the export scope gets 403.
func (e *Edge) CheckExport(t *testing.T, plural, filter, key, stranger, reader string, want []string) {
	t.Helper()
	path := "/v1/" + plural + ":export?" + url.Values{"filter": {filter}}.Encode()
	same := func(what string, got []string) {
		t.Helper()
		got, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(got)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s export of %s %q: %v, want %v", what, plural, filter, got, w)
		}
	}
	r := e.Do(t, http.MethodGet, path, key, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export %s: %d %s", plural, r.Status, r.Body)
	}
	var ids []string
	for sc := bufio.NewScanner(bytes.NewReader(r.Body)); sc.Scan(); {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s line %q: %v", plural, sc.Text(), err)
		}
		ids = append(ids, rec["id"].(string))
	}
	same("NDJSON", ids)
	r = e.DoWith(t, http.MethodGet, path, key, nil, http.Header{"Accept": {"text/csv"}})
	rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if r.Status != http.StatusOK || err != nil || len(rows) == 0 || rows[0][0] != "id" {
		t.Fatalf("CSV export %s: %d %v %s", plural, r.Status, err, r.Body)
	}
	ids = nil
	for _, row := range rows[1:] {
		ids = append(ids, row[0])
	}
	same("CSV", ids)
	if r := e.Do(t, http.MethodGet, path, stranger, nil); r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Errorf("another tenant's export of %s: %d %s, want 200 and nothing", plural, r.Status, r.Body)
	}
	if r := e.Do(t, http.MethodGet, path, reader, nil); r.Status != http.StatusForbidden {
		t.Errorf("export of %s without the export scope: %d %s, want 403", plural, r.Status, r.Body)
	}
}
