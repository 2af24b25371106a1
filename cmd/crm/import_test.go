package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

var createdSoFar = regexp.MustCompile(`, (\d+) created,`)

// TestImportKilledMidwayResumes: `crm import` streams a lead CSV to the marketing process, which
// is killed (SIGKILL) once rows are written; restarted, it reports the import FAILED with the
// line to resume from; `crm import --resume-from-line` finishes it, and the tenant then holds
// exactly the file's leads (each once, each whole) and one customer per person. The marketing
// process's peak RSS is in the log.
func TestImportKilledMidwayResumes(t *testing.T) {
	s := startProcessSuite(t)
	tenant, key := s.newKey()
	sys := s.system()
	rows := servicetest.Size(30_000, 100_000)
	file := filepath.Join(t.TempDir(), "leads.csv")
	want := map[string][2]string{}
	var b bytes.Buffer
	b.WriteString("email,givenName,company\n")
	for i := range rows {
		email := fmt.Sprintf("kill.%d@example.com", i)
		want[email] = [2]string{fmt.Sprintf("Given %d", i), fmt.Sprintf("Company %d", i%97)}
		fmt.Fprintf(&b, "%s,%s,%s\n", email, want[email][0], want[email][1])
	}
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	crmImport := func(args ...string) *exec.Cmd {
		cmd := exec.Command(s.bin, append([]string{"import", file, "--kind", "leads", "--addr", s.addrs["marketing"]}, args...)...)
		cmd.Env = append(os.Environ(), "CRM_API_KEY="+key)
		return cmd
	}

	// Not a terminal: the command prints plain progress lines; kill marketing once rows are written.
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
			s.kill("marketing")
			break
		}
	}
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	if err := cmd.Wait(); err == nil || name == "" {
		t.Fatalf("crm import of a killed service: %v; output:\n%s", err, strings.Join(seen, "\n"))
	}
	s.restart("marketing")

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
	t.Logf("killed after line %d of %d (%d leads created)", meta.GetCheckpointLine(), rows+1, meta.GetCreated())

	resumed, err := crmImport("--resume-from-line", strconv.FormatInt(meta.GetResumeFromLine(), 10)).CombinedOutput()
	if err != nil || !strings.Contains(string(resumed), "SUCCEEDED") {
		t.Fatalf("resumed import: %v\n%s", err, resumed)
	}
	t.Logf("resumed: %s", bytes.TrimSpace(resumed))
	if rss, err := peakRSS(s.procs["marketing"].Process.Pid); err == nil {
		t.Logf("marketing process peak RSS after importing %d rows (%d bytes): %s", rows-int(meta.GetCheckpointLine())+1, b.Len(), rss)
	}

	// Exactly the file's leads: each once, each whole.
	r := sys.do(t, http.MethodGet, "/v1/leads:export", key, nil)
	got := map[string][2]string{}
	lines := 0
	ex := bufio.NewScanner(bytes.NewReader(r.body))
	ex.Buffer(nil, 1<<20)
	for ex.Scan() {
		lines++
		lead := &marketingv1.Lead{}
		if err := protojson.Unmarshal(ex.Bytes(), lead); err != nil {
			t.Fatal(err)
		}
		got[lead.GetEmail()] = [2]string{lead.GetGivenName(), lead.GetCompany()}
	}
	if r.status != http.StatusOK || lines != rows || len(got) != rows {
		t.Fatalf("export after the resumed import: %d, %d lines, %d e-mails; want %d", r.status, lines, len(got), rows)
	}
	for email, w := range want {
		if got[email] != w {
			t.Fatalf("lead %s = %v, want %v", email, got[email], w)
		}
	}
	keys, err := keyspace.Load(context.Background(), redistest.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := redistest.Client(t).HLen(context.Background(), keys.Scope("marketing", tenant).Key("customer-emails")).Val(); n != int64(rows) {
		t.Fatalf("%d customers registered, want %d", n, rows)
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
