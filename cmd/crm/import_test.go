package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

var createdSoFar = regexp.MustCompile(`, (\d+) created,`)

// killCase is one kind of import for TestImportKilledMidwayResumes: the process that serves it,
// its CSV rows, and how an exported record gives back the key and values a row wrote.
type killCase struct {
	kind, service, header string
	rows                  int
	// row is the i-th data row, its natural key and the two values it sets.
	row func(i int) (line, key string, values [2]string)
	// record reads one line of the kind's NDJSON export.
	record func(t *testing.T, line []byte) (key string, values [2]string)
	// people: every row registers one person in marketing's registry (leads, contacts).
	people bool
}

func killCases() []killCase {
	unmarshal := func(t *testing.T, line []byte, m proto.Message) {
		if err := protojson.Unmarshal(line, m); err != nil {
			t.Fatal(err)
		}
	}
	return []killCase{
		{kind: "leads", service: "marketing", header: "email,givenName,company", rows: servicetest.Size(30_000, 100_000), people: true,
			row: func(i int) (string, string, [2]string) {
				v := [2]string{fmt.Sprintf("Given %d", i), fmt.Sprintf("Company %d", i%97)}
				email := fmt.Sprintf("kill.%d@example.com", i)
				return email + "," + v[0] + "," + v[1], email, v
			},
			record: func(t *testing.T, line []byte) (string, [2]string) {
				l := &marketingv1.Lead{}
				unmarshal(t, line, l)
				return l.GetEmail(), [2]string{l.GetGivenName(), l.GetCompany()}
			}},
		{kind: "contacts", service: "sales", header: "email,givenName,familyName", rows: servicetest.Size(20_000, 50_000), people: true,
			row: func(i int) (string, string, [2]string) {
				v := [2]string{fmt.Sprintf("Given %d", i), fmt.Sprintf("Family %d", i%89)}
				email := fmt.Sprintf("kill.contact.%d@example.com", i)
				return email + "," + v[0] + "," + v[1], email, v
			},
			record: func(t *testing.T, line []byte) (string, [2]string) {
				c := &salesv1.Contact{}
				unmarshal(t, line, c)
				return c.GetEmail(), [2]string{c.GetGivenName(), c.GetFamilyName()}
			}},
		{kind: "accounts", service: "sales", header: "displayName,domain,industry", rows: servicetest.Size(20_000, 50_000),
			row: func(i int) (string, string, [2]string) {
				v := [2]string{fmt.Sprintf("Account %d", i), fmt.Sprintf("industry-%d", i%13)}
				domain := fmt.Sprintf("kill-%d.example", i)
				return v[0] + "," + domain + "," + v[1], domain, v
			},
			record: func(t *testing.T, line []byte) (string, [2]string) {
				a := &salesv1.Account{}
				unmarshal(t, line, a)
				return a.GetDomain(), [2]string{a.GetDisplayName(), a.GetIndustry()}
			}},
		{kind: "products", service: "product", header: "sku,displayName,price,category", rows: servicetest.Size(20_000, 50_000),
			row: func(i int) (string, string, [2]string) {
				v := [2]string{fmt.Sprintf("Product %d", i), fmt.Sprintf("category-%d", i%7)}
				sku := fmt.Sprintf("KILL-%d", i)
				return sku + "," + v[0] + ",12.50 EUR," + v[1], strings.ToLower(sku), v
			},
			record: func(t *testing.T, line []byte) (string, [2]string) {
				p := &productv1.Product{}
				unmarshal(t, line, p)
				return strings.ToLower(p.GetSku()), [2]string{p.GetDisplayName(), p.GetCategory()}
			}},
	}
}

// TestImportKilledMidwayResumes, for each kind: `crm import` streams a CSV to the service's
// process, which is killed (SIGKILL) once rows are written; restarted, it reports the import
// FAILED with the line to resume from; `crm import --resume-from-line` finishes it, and the tenant
// then holds exactly the file's records (each once, each whole) and, for leads and contacts, one
// customer per person. The serving process's peak RSS is in the log.
func TestImportKilledMidwayResumes(t *testing.T) {
	s := startProcessSuite(t)
	for _, c := range killCases() {
		t.Run(c.kind, func(t *testing.T) { killMidImport(t, s, c) })
	}
}

func killMidImport(t *testing.T, s *processSuite, c killCase) {
	tenant, key := s.newKey()
	sys := s.system()
	file := filepath.Join(t.TempDir(), c.kind+".csv")
	want := map[string][2]string{}
	var b bytes.Buffer
	b.WriteString(c.header + "\n")
	for i := range c.rows {
		line, k, v := c.row(i)
		want[k] = v
		b.WriteString(line + "\n")
	}
	if len(want) != c.rows {
		t.Fatalf("the generator repeats keys: %d for %d rows", len(want), c.rows)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	crmImport := func(args ...string) *exec.Cmd {
		cmd := exec.Command(s.bin, append([]string{"import", file, "--kind", c.kind, "--addr", s.addrs[c.service]}, args...)...)
		cmd.Env = append(os.Environ(), "CRM_API_KEY="+key)
		return cmd
	}

	// Not a terminal: the command prints plain progress lines; kill the service once rows are written.
	cmd := crmImport()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var name string
	sc := bufio.NewScanner(out)
	var seen []string
	for sc.Scan() {
		line := sc.Text()
		seen = append(seen, line)
		if n, ok := strings.CutPrefix(line, "operation "); ok {
			name = n
		}
		if m := createdSoFar.FindStringSubmatch(line); m != nil && m[1] != "0" {
			s.kill(c.service)
			break
		}
	}
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	if err := cmd.Wait(); err == nil || name == "" {
		t.Fatalf("crm import of a killed service: %v; output:\n%s", err, strings.Join(seen, "\n"))
	}
	s.restart(c.service)

	// The restarted service finds the import's lease run out: FAILED, with the line to resume from.
	var meta *typev1.ImportMetadata
	deadline := time.Now().Add(time.Minute)
	for {
		r := sys.do(t, http.MethodGet, "/v1/"+name, key, nil)
		op := &longrunningpb.Operation{}
		if r.status != http.StatusOK || protojson.Unmarshal(r.body, op) != nil {
			t.Fatalf("GET %s: %d %s", name, r.status, r.body)
		}
		meta = &typev1.ImportMetadata{}
		if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
			t.Fatal(err)
		}
		if op.GetDone() {
			if codes.Code(op.GetError().GetCode()) != codes.Aborted || meta.GetState() != typev1.ImportState_IMPORT_STATE_FAILED ||
				meta.GetResumeFromLine() != meta.GetCheckpointLine()+1 || meta.GetResumeFromLine() < 2 {
				t.Fatalf("the killed import: %v", op)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed import still runs: %v", op)
		}
		time.Sleep(200 * time.Millisecond) // polling the operation, as a client does
	}
	t.Logf("killed after line %d of %d (%d %s created)", meta.GetCheckpointLine(), c.rows+1, meta.GetCreated(), c.kind)

	resumed, err := crmImport("--resume-from-line", strconv.FormatInt(meta.GetResumeFromLine(), 10)).CombinedOutput()
	if err != nil || !strings.Contains(string(resumed), "SUCCEEDED") {
		t.Fatalf("resumed import: %v\n%s", err, resumed)
	}
	t.Logf("resumed: %s", bytes.TrimSpace(resumed))
	if rss, err := peakRSS(s.procs[c.service].Process.Pid); err == nil {
		t.Logf("%s process peak RSS after importing %d rows (%d bytes): %s", c.service, c.rows-int(meta.GetCheckpointLine())+1, b.Len(), rss)
	}

	// Exactly the file's records: each once, each whole.
	r := sys.do(t, http.MethodGet, "/v1/"+c.kind+":export", key, nil)
	got := map[string][2]string{}
	lines := 0
	ex := bufio.NewScanner(bytes.NewReader(r.body))
	ex.Buffer(nil, 1<<20)
	for ex.Scan() {
		lines++
		k, v := c.record(t, ex.Bytes())
		got[k] = v
	}
	if r.status != http.StatusOK || lines != c.rows || len(got) != c.rows {
		t.Fatalf("export after the resumed import: %d, %d lines, %d keys; want %d", r.status, lines, len(got), c.rows)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("%s %s = %v, want %v", c.kind, k, got[k], w)
		}
	}
	if !c.people {
		return
	}
	keys, err := keyspace.Load(context.Background(), redistest.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := redistest.Client(t).HLen(context.Background(), keys.Scope("marketing", tenant).Key("customer-emails")).Val(); n != int64(c.rows) {
		t.Fatalf("%d customers registered, want %d", n, c.rows)
	}
}

// peakRSS is a process's high-water resident set (VmHWM) as Linux reports it.
func peakRSS(pid int) (string, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no VmHWM for %d", pid)
}

// parseServe parses crm serve's flags as the command does (with a Redis URL, which it requires).
func parseServe(args ...string) (processConfig, error) {
	var cfg processConfig
	fs := flag.NewFlagSet("crm serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.registerFlags(fs, true)
	return cfg, cfg.parse(fs, append([]string{"--redis-url", "redis://127.0.0.1:1"}, args...))
}

// TestImportBatchesInFlight: --import-batches-in-flight (and CRM_IMPORT_BATCHES_IN_FLIGHT) reaches
// the services through platform.Deps, importer.DefaultInFlight by default; below 1 is refused.
func TestImportBatchesInFlight(t *testing.T) {
	inFlight := func(args ...string) int {
		t.Helper()
		cfg, err := parseServe(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		p := &process{cfg: cfg}
		return p.platformDeps().ImportBatchesInFlight
	}
	if got := inFlight(); got != importer.DefaultInFlight {
		t.Errorf("by default the services get %d batches in flight, want %d", got, importer.DefaultInFlight)
	}
	if got := inFlight("--import-batches-in-flight", "1"); got != 1 {
		t.Errorf("--import-batches-in-flight 1: the services get %d", got)
	}
	if _, err := parseServe("--import-batches-in-flight", "0"); err == nil || !strings.Contains(err.Error(), "--import-batches-in-flight") {
		t.Errorf("--import-batches-in-flight 0: %v, want a refusal that names the flag", err)
	}
	// The import size limit reaches the services' gRPC streams too, not only the gateway.
	if cfg, err := parseServe("--max-import-bytes", "4096"); err != nil || (&process{cfg: cfg}).platformDeps().ImportMaxBytes != 4096 {
		t.Errorf("--max-import-bytes 4096: the services get %v (%v)", (&process{cfg: cfg}).platformDeps().ImportMaxBytes, err)
	}
	t.Setenv("CRM_IMPORT_BATCHES_IN_FLIGHT", "2")
	if got := inFlight(); got != 2 {
		t.Errorf("CRM_IMPORT_BATCHES_IN_FLIGHT=2: the services get %d", got)
	}
}

// TestImportExitStatus: crm import's outcome as a script sees it. A finished import with failed
// rows still lists them, and exits 2; one that failed or was cancelled exits 1; a clean one 0.
func TestImportExitStatus(t *testing.T) {
	op := func(meta *typev1.ImportMetadata) *longrunningpb.Operation {
		m, err := anypb.New(meta)
		if err != nil {
			t.Fatal(err)
		}
		return &longrunningpb.Operation{Name: "operations/marketing.x", Done: true, Metadata: m}
	}
	rowError := &typev1.ImportRowError{Line: 3, Field: "email", Reason: importer.ReasonInvalidEmail, Message: "must be a plain e-mail address"}
	for _, c := range []struct {
		name string
		meta *typev1.ImportMetadata
		want int
	}{
		{"clean", &typev1.ImportMetadata{State: typev1.ImportState_IMPORT_STATE_SUCCEEDED, RowsRead: 2, Created: 1, Skipped: 1}, 0},
		{"rows failed", &typev1.ImportMetadata{State: typev1.ImportState_IMPORT_STATE_SUCCEEDED, RowsRead: 2, Created: 1, Failed: 1,
			ErrorCount: 1, Errors: []*typev1.ImportRowError{rowError}}, 2},
		{"stopped", &typev1.ImportMetadata{State: typev1.ImportState_IMPORT_STATE_FAILED, CheckpointLine: 501, ResumeFromLine: 502}, 1},
		{"cancelled", &typev1.ImportMetadata{State: typev1.ImportState_IMPORT_STATE_CANCELLED}, 1},
	} {
		var out bytes.Buffer
		err := report(&out, op(c.meta), "leads.csv", "leads")
		if got := exitCode(err); got != c.want {
			t.Errorf("%s: exit status %d (%v), want %d", c.name, got, err, c.want)
		}
		if c.meta.GetFailed() > 0 && !strings.Contains(out.String(), "line 3: email INVALID_EMAIL: must be a plain e-mail address") {
			t.Errorf("%s: the row errors are not listed:\n%s", c.name, out.String())
		}
	}
	if got := exitCode(fmt.Errorf("dial: %w", errors.New("refused"))); got != 1 {
		t.Errorf("an import that could not start: exit status %d, want 1", got)
	}
}

// TestImportIdempotencyKeyOverCLI: `crm import --idempotency-key` run again answers the first
// run's operation without importing; REST with the same key and file is the same request; another
// file with the key is refused (IDEMPOTENCY_KEY_REUSED) and writes none of its rows.
func TestImportIdempotencyKeyOverCLI(t *testing.T) {
	s := startSystem(t)
	_, key := s.newKey(t, "", "marketing.read", "marketing.write")
	dir := t.TempDir()
	write := func(name, body string) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	const fileA = "email,givenName\ncli.a@example.com,A\ncli.b@example.com,B\n"
	a, b := write("a.csv", fileA), write("b.csv", "email,givenName\ncli.c@example.com,C\n")
	run := func(file string) (string, error) {
		var out bytes.Buffer
		err := importFile(t.Context(), []string{file, "--kind", "leads", "--addr", s.grpc.Target(), "--api-key", key,
			"--idempotency-key", "cli-1"}, &out)
		return out.String(), err
	}
	first, err := run(a)
	if err != nil || !strings.Contains(first, " 2 created") {
		t.Fatalf("first run: %v\n%s", err, first)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(first[strings.LastIndex(first, "operations/"):]), " ")
	again, err := run(a)
	if err != nil || !strings.Contains(again, name+" SUCCEEDED: 2 rows read, 2 created") {
		t.Fatalf("second run: %v\n%s\nwant the first run's %s as it ended", err, again, name)
	}
	r := (&gatewaytest.Edge{URL: s.rest, Client: s.client}).DoWith(t, http.MethodPost, "/v1/leads:import", key, []byte(fileA),
		http.Header{"Content-Type": {"text/csv"}, "Idempotency-Key": {"cli-1"}})
	if op, _ := gatewaytest.DecodeOperation(t, r.Body); r.Status != http.StatusOK || op.GetName() != name {
		t.Fatalf("REST with the CLI's key and file: %d %s, want %s", r.Status, r.Body, name)
	}
	if out, err := run(b); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "Idempotency-Key was used with a different request") {
		t.Fatalf("another file with the key: %v\n%s", err, out)
	}
	if leads := s.do(t, http.MethodGet, "/v1/leads?filter=email%20%3D%20%22cli.c@example.com%22", key, nil).json(t)["leads"]; leads != nil {
		t.Fatalf("the refused file's row was imported: %v", leads)
	}
	ops, _ := s.do(t, http.MethodGet, "/v1/operations", key, nil).json(t)["operations"].([]any)
	if len(ops) != 1 {
		t.Fatalf("%d operations after three calls with one key, want 1", len(ops))
	}
}
