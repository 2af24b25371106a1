package rpc_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestExportLeads: every lead, or the filter's, streamed over REST as NDJSON and CSV and over gRPC
// in messages of at most 500; only with the export scope; recorded in the audit log; another
// tenant's export is empty.
func TestExportLeads(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.write", "marketing.export")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.export")
	client, ctx := sys.marketing(key)
	var all, vip []string
	for i := range 1_203 {
		lead := &marketingv1.Lead{Email: fmt.Sprintf("x%d@example.com", i), GivenName: fmt.Sprintf("Ëxport %d", i)}
		if i%7 == 0 {
			lead.Tags = []string{"vip"}
		}
		res, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: lead})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res.GetLead().GetId())
		if i%7 == 0 {
			vip = append(vip, res.GetLead().GetId())
		}
	}
	export := func(k, query string, header http.Header) (int, http.Header, []byte) {
		r := sys.DoWith(t, http.MethodGet, "/v1/leads:export?"+query, k, nil, header)
		return r.Status, r.Header, r.Body
	}
	ndjsonIDs := func(body []byte) []string {
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var lead map[string]any
			if err := json.Unmarshal(sc.Bytes(), &lead); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			ids = append(ids, lead["id"].(string))
		}
		return ids
	}
	sameSet := func(what string, got, want []string) {
		t.Helper()
		got, want = slices.Clone(got), slices.Clone(want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d leads, want %d", what, len(got), len(want))
		}
	}

	code, h, body := export(key, "", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s %.300s", code, h.Get("Content-Type"), body)
	}
	sameSet("NDJSON export", ndjsonIDs(body), all)
	code, _, body = export(key, url.Values{"filter": {`tags:"vip"`}}.Encode(), nil)
	if code != http.StatusOK {
		t.Fatalf("filtered export: %d %s", code, body)
	}
	sameSet("filtered NDJSON export", ndjsonIDs(body), vip)

	// The Accept header picks the form, q-values and wildcards included; a form an export has not
	// is 406 naming Accept.
	for accept, want := range map[string]string{
		"application/json": "application/x-ndjson", "*/*": "application/x-ndjson", "text/*": "text/csv; charset=utf-8",
		"application/x-ndjson;q=0.5, text/csv": "text/csv; charset=utf-8", "text/csv;q=0.1, application/x-ndjson": "application/x-ndjson",
		"application/*;q=0, */*": "text/csv; charset=utf-8", "text/csv;q=0, */*;q=0.5": "application/x-ndjson",
	} {
		if code, h, body := export(key, url.Values{"filter": {`tags:"vip"`}}.Encode(), http.Header{"Accept": {accept}}); code != http.StatusOK || h.Get("Content-Type") != want {
			t.Errorf("export with Accept %q: %d %s %.200s, want 200 %s", accept, code, h.Get("Content-Type"), body, want)
		}
	}
	for _, accept := range []string{"application/xml", "text/html, application/pdf", "*/*;q=0", "application/*;q=0, text/*;q=0"} {
		r := sys.DoWith(t, http.MethodGet, "/v1/leads:export", key, nil, http.Header{"Accept": {accept}})
		if r.Status != http.StatusNotAcceptable || !slices.Equal(r.FieldViolations(t), []string{"Accept"}) {
			t.Errorf("export with Accept %q: %d %s, want 406 naming Accept", accept, r.Status, r.Body)
		}
	}

	code, h, body = export(key, url.Values{"filter": {`tags:"vip"`}}.Encode(), http.Header{"Accept": {"text/csv"}})
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if code != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" || err != nil || len(rows) != len(vip)+1 {
		t.Fatalf("CSV export: %d %s %v, %d rows, want %d", code, h.Get("Content-Type"), err, len(rows), len(vip)+1)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	var csvIDs []string
	for _, row := range rows[1:] {
		csvIDs = append(csvIDs, row[col["id"]])
		if row[col["tags"]] != "vip" || row[col["status"]] != "LEAD_STATUS_NEW" || row[col["givenName"]][:2] != "Ë" {
			t.Errorf("CSV row %v: want tags vip, status by name, the name as written", row)
		}
	}
	sameSet("CSV export", csvIDs, vip)

	stream, err := client.ExportLeads(ctx, &marketingv1.ExportLeadsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var grpcIDs []string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := len(msg.GetLeads()); n == 0 || n > 500 {
			t.Errorf("a stream message of %d leads, want 1 to 500", n)
		}
		for _, l := range msg.GetLeads() {
			grpcIDs = append(grpcIDs, l.GetId())
		}
	}
	sameSet("gRPC export", grpcIDs, all)

	if code, _, body := export(stranger, "", nil); code != http.StatusOK || len(body) != 0 {
		t.Errorf("another tenant's export: %d %.200s, want 200 and nothing", code, body)
	}
	for _, c := range []struct {
		key, query string
		code       int
	}{
		{reader, "", http.StatusForbidden}, // read is not export
		{"", "", http.StatusUnauthorized},
		{key, url.Values{"filter": {`colour = "red"`}}.Encode(), http.StatusBadRequest},
		{key, "pageSize=10", http.StatusBadRequest},
	} {
		if code, _, body := export(c.key, c.query, nil); code != c.code || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("export %q: %d %s, want %d with an error body", c.query, code, body, c.code)
		}
	}
	if _, err := func() (any, error) {
		s, err := client.ExportLeads(ctx, &marketingv1.ExportLeadsRequest{Filter: `colour = "red"`})
		if err != nil {
			return nil, err
		}
		return s.Recv()
	}(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC export with a bad filter: %v, want InvalidArgument", err)
	}

	exported := sys.events(t, tenant, marketingv1.EventLeadsExported.Name)
	var filters []string
	for _, ev := range exported {
		payload := &eventv1.Exported{}
		if err := ev.GetPayload().UnmarshalTo(payload); err != nil || payload.GetResource() != "leads" {
			t.Fatalf("audit event %v: %v", ev, err)
		}
		filters = append(filters, payload.GetFilter()+" as "+payload.GetFormat())
	}
	// The gateway's NDJSON and CSV, and the RPC's own stream, each named.
	for _, want := range []string{` as ndjson`, `tags:"vip" as ndjson`, `tags:"vip" as csv`, ` as grpc`} {
		if !slices.Contains(filters, want) {
			t.Errorf("audit: export events with filters and formats %q, want one %q", filters, want)
		}
	}
}
