package rpc_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// importScopes may import and export sales' records; a contact import resolves people in
// marketing's registry (marketing.read).
var importScopes = []string{"sales.read", "sales.write", "sales.export", "marketing.read"}

// genFile is a generated import file and what importing it must do.
type genFile struct {
	csv    []byte
	valid  map[string][]string
	errors []*typev1.ImportRowError
	rows   int
}

// generate is gatewaytest.Generate in the tests' short names.
func generate(rows int, header string, row func(i int) (string, []string),
	spoil func(i int, row, earlier []string) ([]string, *typev1.ImportRowError)) genFile {
	g := gatewaytest.Generate(rows, header, row, spoil)
	return genFile{csv: g.CSV, valid: g.Valid, errors: g.Errors, rows: g.Rows}
}

// genAccounts: names with accents, domains in random case, five kinds of malformed rows (bad
// domain, missing column, bad owner, a domain an earlier row had in other case, invalid UTF-8).
func genAccounts(rows int, seed uint64) genFile {
	rng := rand.New(rand.NewPCG(seed, 3))
	industries := []string{"saas", "retail", "health"}
	return generate(rows, "displayName,domain,ownerId,industry", func(i int) (string, []string) {
		domain := fmt.Sprintf("acme-%d-%d.example.com", seed, i)
		written := domain
		if i%7 == 0 {
			written = strings.ToUpper(domain)
		}
		return domain, []string{fmt.Sprintf("Ácme Ünïted %d", i), written, fmt.Sprintf("rep-%d", rng.IntN(5)), industries[rng.IntN(3)]}
	}, func(i int, row, earlier []string) ([]string, *typev1.ImportRowError) {
		switch (i / 100) % 5 {
		case 0:
			row[1] = "not a domain"
			return row, &typev1.ImportRowError{Field: "domain", Reason: importer.ReasonInvalidValue}
		case 1:
			return row[:3], &typev1.ImportRowError{Field: "industry", Reason: importer.ReasonMissingColumn}
		case 2:
			row[2] = "rep #7"
			return row, &typev1.ImportRowError{Field: "ownerId", Reason: importer.ReasonInvalidValue}
		case 3:
			row[1] = strings.ToUpper(earlier[i%len(earlier)])
			return row, &typev1.ImportRowError{Reason: importer.ReasonDuplicate}
		}
		row[0] = "Bad\xff\xfeName"
		return row, &typev1.ImportRowError{Field: "displayName", Reason: importer.ReasonInvalidUTF8}
	})
}

// exported reads an NDJSON export of plural as records made by newMsg, by key.
func exported[T proto.Message](t *testing.T, sys *system, plural, key, filter string, newMsg func() T, cells func(T) (string, []string)) map[string][]string {
	t.Helper()
	r := sys.Do(t, http.MethodGet, "/v1/"+plural+":export?filter="+url.QueryEscape(filter), key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("export %s: %d %s", plural, r.Status, r.Body)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := newMsg()
		if err := protojson.Unmarshal(sc.Bytes(), m); err != nil {
			t.Fatal(err)
		}
		k, c := cells(m)
		if _, twice := out[k]; twice {
			t.Fatalf("export %s has %q twice", plural, k)
		}
		out[k] = c
	}
	return out
}

// checkRoundTrip compares an export with the file's valid rows, keeping those keep accepts.
func checkRoundTrip(t *testing.T, what string, got, valid map[string][]string, keep func([]string) bool) {
	t.Helper()
	n := 0
	for k, want := range valid {
		if !keep(want) {
			continue
		}
		n++
		if strings.Join(got[k], "|") != strings.Join(want, "|") {
			t.Fatalf("%s: %q = %q, want %q", what, k, got[k], want)
		}
	}
	if len(got) != n {
		t.Fatalf("%s: %d records, want %d", what, len(got), n)
	}
}

func accountCells(a *salesv1.Account) (string, []string) {
	return a.GetDomain(), []string{a.GetDisplayName(), a.GetDomain(), a.GetOwnerId(), a.GetIndustry()}
}

// normalizedAccounts is the file's valid rows with the domain as stored (lower case).
func normalizedAccounts(f genFile) map[string][]string {
	out := map[string][]string{}
	for k, v := range f.valid {
		out[k] = []string{v[0], strings.ToLower(v[1]), v[2], v[3]}
	}
	return out
}

// TestImportAccountsCSV: a generated CSV (10,000 rows; 30,000 under the long flag) with 1 %
// malformed rows imports with counts and row errors equal to the ones computed while generating
// it; the export equals the file's valid rows, whole and under a filter; the same file again
// changes nothing; another tenant's import of the file's start makes its own accounts, and neither
// tenant sees the other's operation.
func TestImportAccountsCSV(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	tenant, key := sys.NewKey(t, "", importScopes...)
	f := genAccounts(servicetest.Size(10_000, 30_000), 1)

	op, meta := sys.Import(t, "/v1/accounts:import", key, "text/csv", f.csv)
	if !op.GetDone() || op.GetError() != nil || !strings.HasPrefix(op.GetName(), "operations/sales.") {
		t.Fatalf("operation %v", op)
	}
	gatewaytest.CheckImport(t, "first import", meta, gatewaytest.ImportWant{Rows: f.rows, Created: len(f.valid), Errors: f.errors})
	want := normalizedAccounts(f)
	newAccount := func() *salesv1.Account { return &salesv1.Account{} }
	checkRoundTrip(t, "export", exported(t, sys, "accounts", key, "", newAccount, accountCells), want, func([]string) bool { return true })
	checkRoundTrip(t, "filtered export", exported(t, sys, "accounts", key, `industry = "retail"`, newAccount, accountCells), want,
		func(c []string) bool { return c[3] == "retail" })
	if n := len(sys.events(t, tenant, salesv1.EventAccountCreated.Name)); n != len(f.valid) {
		t.Fatalf("%d account.created events, want %d", n, len(f.valid))
	}

	before := sys.OKBytes(t, http.MethodGet, "/v1/accounts:export", key, nil)
	keys, events := sys.Suite.Footprint(t, "sales", tenant)
	_, again := sys.Import(t, "/v1/accounts:import", key, "text/csv", f.csv)
	gatewaytest.CheckImport(t, "second import", again, gatewaytest.ImportWant{Rows: f.rows, Skipped: len(f.valid), Errors: f.errors})
	// The second import's own operation record is its only trace: no event, no other key.
	if k, e := sys.Suite.Footprint(t, "sales", tenant); k != keys+1 || e != events {
		t.Fatalf("the same file again: %d keys %d events, before %d %d (want one more key: the operation)", k, e, keys, events)
	}
	if after := sys.OKBytes(t, http.MethodGet, "/v1/accounts:export", key, nil); !bytes.Equal(after, before) {
		t.Fatal("the same file again changed accounts")
	}

	// Another tenant: its own accounts from the start of the same file (the same domains), and no
	// view of the first one's operation.
	_, other := sys.NewKey(t, "", importScopes...)
	head := genAccounts(300, 1)
	otherOp, otherMeta := sys.Import(t, "/v1/accounts:import", other, "text/csv", head.csv)
	gatewaytest.CheckImport(t, "other tenant", otherMeta, gatewaytest.ImportWant{Rows: head.rows, Created: len(head.valid), Errors: head.errors})
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

// genContacts: names with accents, e-mails in random case, an external id on every third row, a
// few rows on an account; six kinds of malformed rows (bad e-mail, missing column, bad phone, an
// e-mail an earlier row had in other case, invalid UTF-8, an account that does not exist).
func genContacts(rows int, seed uint64, account string) genFile {
	rng := rand.New(rand.NewPCG(seed, 5))
	return generate(rows, "email,givenName,familyName,phone,ownerId,accountId,externalId", func(i int) (string, []string) {
		email := fmt.Sprintf("contact.%d.%d@example.com", seed, i)
		written, ext, acc := email, "", ""
		if i%5 == 0 {
			written = strings.ToUpper(email)
		}
		if i%3 == 0 {
			ext = fmt.Sprintf("ext-%d-%d", seed, i)
		}
		if i%10 == 0 {
			acc = account
		}
		return email, []string{written, fmt.Sprintf("Zoë %d", i), fmt.Sprintf("Ñúñez%d", rng.IntN(40)),
			fmt.Sprintf("+1 555 %04d", i%10000), fmt.Sprintf("rep-%d", rng.IntN(4)), acc, ext}
	}, func(i int, row, earlier []string) ([]string, *typev1.ImportRowError) {
		switch (i / 100) % 6 {
		case 0:
			row[0] = "contact-" + fmt.Sprint(i)
			return row, &typev1.ImportRowError{Field: "email", Reason: importer.ReasonInvalidEmail}
		case 1:
			return row[:6], &typev1.ImportRowError{Field: "externalId", Reason: importer.ReasonMissingColumn}
		case 2:
			row[3] = "call me"
			return row, &typev1.ImportRowError{Field: "phone", Reason: importer.ReasonInvalidValue}
		case 3:
			row[0] = strings.ToUpper(earlier[i%len(earlier)])
			return row, &typev1.ImportRowError{Reason: importer.ReasonDuplicate}
		case 4:
			row[1] = "Bad\xff\xfeName"
			return row, &typev1.ImportRowError{Field: "givenName", Reason: importer.ReasonInvalidUTF8}
		}
		row[5] = "01890000-0000-7000-8000-000000000000"
		return row, &typev1.ImportRowError{Field: "accountId", Reason: importer.ReasonInvalidValue}
	})
}

// contactCells are a contact's imported columns as the file has them, but for the external id
// (the registry's, not the contact's) and the e-mail's case.
func contactCells(c *salesv1.Contact) (string, []string) {
	return c.GetEmail(), []string{c.GetEmail(), c.GetGivenName(), c.GetFamilyName(), c.GetPhone(), c.GetOwnerId(), c.GetAccountId()}
}

func normalizedContacts(f genFile) map[string][]string {
	out := map[string][]string{}
	for k, v := range f.valid {
		out[k] = append([]string{strings.ToLower(v[0])}, v[1:6]...)
	}
	return out
}

// TestImportContactsCSV: a generated contact CSV with 1 % malformed rows imports with the computed
// counts and errors; every new person is registered through ResolveCustomers with origin IMPORT
// (so marketing makes them SUSPECTs), one call per batch; the export equals the file, whole and
// under a filter; a person is found by the external id the file gave; the same file again changes
// nothing.
func TestImportContactsCSV(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	tenant, key := sys.NewKey(t, "", importScopes...)
	account := sys.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Acme","domain":"acme.example"}`)
	f := genContacts(servicetest.Size(10_000, 30_000), 1, str(account, "id"))

	_, meta := sys.Import(t, "/v1/contacts:import", key, "text/csv", f.csv)
	gatewaytest.CheckImport(t, "first import", meta, gatewaytest.ImportWant{Rows: f.rows, Created: len(f.valid), Errors: f.errors})
	people, calls := sys.leads.registered(marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT)
	if batches := (f.rows + importer.BatchSize - 1) / importer.BatchSize; people != len(f.valid) || calls < batches || calls > 2*batches {
		t.Fatalf("registered %d people with origin IMPORT in %d calls; want %d in about %d", people, calls, len(f.valid), batches)
	}
	want := normalizedContacts(f)
	newContact := func() *salesv1.Contact { return &salesv1.Contact{} }
	got := exported(t, sys, "contacts", key, "", newContact, contactCells)
	checkRoundTrip(t, "export", got, want, func([]string) bool { return true })
	checkRoundTrip(t, "filtered export", exported(t, sys, "contacts", key, `owner_id = "rep-2"`, newContact, contactCells), want,
		func(c []string) bool { return c[4] == "rep-2" })

	// The external id of row 3 names its contact.
	client, ctx := sys.sales(key)
	byExt, err := client.ListContacts(ctx, &salesv1.ListContactsRequest{Filter: `external_id = "ext-1-3"`})
	if err != nil || len(byExt.GetContacts()) != 1 || byExt.GetContacts()[0].GetEmail() != "contact.1.3@example.com" {
		t.Fatalf("contact by external id: %v %v", byExt, err)
	}
	if n := len(sys.events(t, tenant, salesv1.EventContactCreated.Name)); n != len(f.valid) {
		t.Fatalf("%d contact.created events, want %d", n, len(f.valid))
	}

	before := sys.OKBytes(t, http.MethodGet, "/v1/contacts:export", key, nil)
	_, again := sys.Import(t, "/v1/contacts:import", key, "text/csv", f.csv)
	gatewaytest.CheckImport(t, "second import", again, gatewaytest.ImportWant{Rows: f.rows, Skipped: len(f.valid), Errors: f.errors})
	if after := sys.OKBytes(t, http.MethodGet, "/v1/contacts:export", key, nil); !bytes.Equal(after, before) {
		t.Fatal("the same file again changed contacts")
	}
	if again, _ := sys.leads.registered(marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT); again != people {
		t.Fatalf("the same file again registered %d more people", again-people)
	}
}

// TestImportContactsUpdatesAndConflicts: an NDJSON import updates the contact it names by e-mail
// (only the row's non-empty fields), moves a contact found by its person's external id to the
// row's e-mail, and fails a row whose e-mail and external id are two people's.
func TestImportContactsUpdatesAndConflicts(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", importScopes...)
	ada := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"ada@example.com","givenName":"Ada","phone":"+1 555"}`)
	bob := sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"bob@example.com","givenName":"Bob"}`)
	sys.leads.link(tenant, "bob@example.com", "crm-bob")
	sys.OK(t, http.MethodPost, "/v1/contacts", key, `{"email":"carol@example.com"}`)

	body := `{"email":"ADA@example.com","familyName":"Lovelace"}
{"email":"robert@example.com","givenName":"Robert","externalId":"crm-bob"}
{"email":"carol@example.com","givenName":"Carol","externalId":"crm-bob"}
`
	_, meta := sys.Import(t, "/v1/contacts:import", key, "application/x-ndjson", []byte(body))
	gatewaytest.CheckImport(t, "import", meta, gatewaytest.ImportWant{Rows: 3, Updated: 2,
		Errors: []*typev1.ImportRowError{{Line: 3, Field: "externalId", Reason: importer.ReasonConflict}}})
	got := exported(t, sys, "contacts", key, "", func() *salesv1.Contact { return &salesv1.Contact{} }, func(c *salesv1.Contact) (string, []string) {
		return c.GetId(), []string{c.GetEmail(), c.GetGivenName(), c.GetFamilyName(), c.GetPhone()}
	})
	if strings.Join(got[str(ada, "id")], "|") != "ada@example.com|Ada|Lovelace|+1 555" ||
		strings.Join(got[str(bob, "id")], "|") != "robert@example.com|Robert||" || len(got) != 3 {
		t.Fatalf("contacts after the import: %v", got)
	}
}

// TestImportSalesRefusals: a wrong content type is 415 and a body over the gateway's import limit
// 413, on both sales routes, and neither starts an operation or writes anything.
func TestImportSalesRefusals(t *testing.T) {
	sys := startSystem(t)
	small := &system{Edge: gatewaytest.Start(t, sys.Suite, gateway.Config{MaxImportBytes: 4 << 10}), leads: sys.leads}
	tenant, key := sys.NewKey(t, "", importScopes...)
	keys, events := sys.Suite.Footprint(t, "sales", tenant)
	big := genAccounts(200, 9).csv
	for _, path := range []string{"/v1/accounts:import", "/v1/contacts:import"} {
		r := sys.DoWith(t, http.MethodPost, path, key, []byte(`{"email":"ada@example.com"}`), http.Header{"Content-Type": {"application/json"}})
		if r.Status != http.StatusUnsupportedMediaType {
			t.Errorf("%s as JSON: %d %s, want 415", path, r.Status, r.Body)
		}
		if r := small.DoWith(t, http.MethodPost, path, key, big, http.Header{"Content-Type": {"text/csv"}}); r.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d bytes over a 4 KiB limit: %d %s, want 413", path, len(big), r.Status, r.Body)
		}
	}
	if k, e := sys.Suite.Footprint(t, "sales", tenant); k != keys || e != events {
		t.Fatalf("refused imports wrote: %d keys %d events, before %d %d", k, e, keys, events)
	}
}

// TestImportContactsNeedsMarketingRead: a contact import resolves its people in marketing with the
// caller's key, so a key with sales.write alone is refused at once, over REST (403) and gRPC,
// naming the scope and starting no operation; an account import, which needs no other service,
// still runs with that key.
func TestImportContactsNeedsMarketingRead(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "sales.write")
	keys, events := sys.Suite.Footprint(t, "sales", tenant)
	csv := []byte("email,givenName\nada@example.com,Ada\n")
	r := sys.DoWith(t, http.MethodPost, "/v1/contacts:import", key, csv, http.Header{"Content-Type": {"text/csv"}})
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "MISSING_SCOPE") || !strings.Contains(string(r.Body), "marketing.read") {
		t.Errorf("REST import with sales.write alone: %d %s, want 403 MISSING_SCOPE naming marketing.read", r.Status, r.Body)
	}
	client, ctx := sys.sales(key)
	stream, err := client.ImportContacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&typev1.ImportChunk{Format: typev1.ImportFormat_IMPORT_FORMAT_CSV, Data: csv})
	_, err = stream.CloseAndRecv()
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "marketing.read") {
		t.Errorf("gRPC import with sales.write alone: %v, want PERMISSION_DENIED naming marketing.read", err)
	}
	if k, e := sys.Suite.Footprint(t, "sales", tenant); k != keys || e != events {
		t.Fatalf("refused imports wrote: %d keys %d events, before %d %d", k, e, keys, events)
	}
	_, meta := sys.Import(t, "/v1/accounts:import", key, "text/csv", []byte("displayName,domain\nAcme,acme.example\n"))
	gatewaytest.CheckImport(t, "account import", meta, gatewaytest.ImportWant{Rows: 1, Created: 1})
}

// TestImportContactsRefusedByMarketing: marketing refusing the caller's key during an import (a
// key that lost marketing.read) ends the operation FAILED with that refusal as its error, read the
// same later, not as an interruption that a resend would mend.
func TestImportContactsRefusedByMarketing(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", importScopes...)
	sys.leads.mu.Lock()
	sys.leads.denyBatches = true
	sys.leads.mu.Unlock()
	op, meta := sys.Import(t, "/v1/contacts:import", key, "text/csv", []byte("email,givenName\nada@example.com,Ada\n"))
	later := &longrunningpb.Operation{}
	if err := protojson.Unmarshal(sys.OKBytes(t, http.MethodGet, "/v1/"+op.GetName(), key, nil), later); err != nil {
		t.Fatal(err)
	}
	for what, o := range map[string]*longrunningpb.Operation{"answer": op, "GET": later} {
		st := status.FromProto(o.GetError())
		var reason string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if !o.GetDone() || st.Code() != codes.PermissionDenied || reason != "MISSING_SCOPE" || !strings.Contains(st.Message(), "marketing.read") {
			t.Errorf("%s: done %v, error %v %s %q; want PERMISSION_DENIED MISSING_SCOPE naming marketing.read", what, o.GetDone(), st.Code(), reason, st.Message())
		}
	}
	if meta.GetState() != typev1.ImportState_IMPORT_STATE_FAILED || meta.GetCreated() != 0 {
		t.Errorf("metadata %v, want FAILED with nothing created", meta)
	}
}

// TestImportRefusedEarlyAnswersAfterTheWholeBody: an import the service refuses at its header (no
// domain column) while the client is still sending a 16 MiB body gets the 400 whole, and the
// gateway reads the rest of the body instead of resetting the connection under the client.
func TestImportRefusedEarlyAnswersAfterTheWholeBody(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", importScopes...)
	const size = 16 << 20
	body, w := io.Pipe()
	written := make(chan error, 1)
	go func() {
		row := []byte("Acme Corporation,saas,rep-1\n")
		var err error
		_, err = w.Write([]byte("displayName,industry,ownerId\n"))
		for n := 0; err == nil && n < size; n += len(row) {
			_, err = w.Write(row)
		}
		_ = w.CloseWithError(err)
		written <- err
	}()
	req, err := http.NewRequest(http.MethodPost, sys.URL+"/v1/accounts:import", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "domain") {
		t.Fatalf("refused import: %d %s %v", resp.StatusCode, answer, err)
	}
	if err := <-written; err != nil {
		t.Fatalf("sending the body: %v (the gateway closed the connection before reading it)", err)
	}
}

// TestImportTwiceAtOnce: the same file imported twice at the same time, for accounts and contacts,
// makes each record once: between the two, every valid row is created once and skipped once
// (a row whose write lost the race is planned again and finds the record), both report the same
// row errors, and the export equals the file.
func TestImportTwiceAtOnce(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", importScopes...)
	for _, c := range []struct {
		plural string
		file   genFile
	}{
		{"accounts", genAccounts(1_000, 4)},
		{"contacts", genContacts(1_000, 4, "")},
	} {
		type result struct{ created, skipped int64 }
		results := make(chan result, 2)
		for range 2 {
			go func() {
				r := sys.DoWith(t, http.MethodPost, "/v1/"+c.plural+":import", key, c.file.csv, http.Header{"Content-Type": {"text/csv"}})
				if r.Status != http.StatusOK {
					t.Errorf("%s: %d %s", c.plural, r.Status, r.Body)
					results <- result{}
					return
				}
				_, meta := gatewaytest.DecodeOperation(t, r.Body)
				if meta.GetState() != typev1.ImportState_IMPORT_STATE_SUCCEEDED || meta.GetUpdated() != 0 ||
					meta.GetCreated()+meta.GetSkipped() != int64(len(c.file.valid)) || meta.GetFailed() != int64(len(c.file.errors)) {
					t.Errorf("%s at once: %v", c.plural, meta)
				}
				results <- result{meta.GetCreated(), meta.GetSkipped()}
			}()
		}
		a, b := <-results, <-results
		if a.created+b.created != int64(len(c.file.valid)) || a.skipped+b.skipped != int64(len(c.file.valid)) {
			t.Fatalf("%s twice at once: created %d+%d skipped %d+%d, want %d each", c.plural, a.created, b.created, a.skipped, b.skipped, len(c.file.valid))
		}
		var got map[string][]string
		var want map[string][]string
		if c.plural == "accounts" {
			got = exported(t, sys, "accounts", key, "", func() *salesv1.Account { return &salesv1.Account{} }, accountCells)
			want = normalizedAccounts(c.file)
		} else {
			got = exported(t, sys, "contacts", key, "", func() *salesv1.Contact { return &salesv1.Contact{} }, contactCells)
			want = normalizedContacts(c.file)
		}
		checkRoundTrip(t, c.plural+" export", got, want, func([]string) bool { return true })
	}
}
