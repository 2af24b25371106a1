package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// monitorLine is a MONITOR line: '<time> [<db> <client address, or lua>] "<command>" ...'.
var monitorLine = regexp.MustCompile(`^\d+\.\d+ \[\d+ (\S+)\] "([^"]+)"`)

// The request path and the services' reactions go to Redis on connections of their own: a
// new-lead CaptureLead is exactly one round trip on the request path's connections ("crm",
// DESIGN §10), and the reactions to its events (the integration recorder, marketing's lifecycle)
// come from the reactions' ("crm-react"), so a burst of them never holds a request's connection.
func TestTheRequestPathAndTheReactionsHaveTheirOwnConnections(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", "marketing.write")
	client, ctx := sys.marketing(key)
	capture := func(email string) {
		t.Helper()
		if _, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{
			Lead: &marketingv1.Lead{Email: email, Channel: typev1.Channel_CHANNEL_WEB},
		}); err != nil {
			t.Fatalf("capture %s: %v", email, err)
		}
	}
	capture("warm-up@example.com") // the key is looked up once, then cached

	lines := monitor(t)
	waitFor(t, "MONITOR started", func() string { return <-lines }, func(s string) bool { return s == "OK" })

	const captures = 10
	for i := range captures {
		capture(fmt.Sprintf("lead-%d@example.com", i))
	}
	// Every consumer group has read and acknowledged everything on the tenant's marketing stream.
	keys, err := keyspace.Load(context.Background(), sys.rdb)
	if err != nil {
		t.Fatal(err)
	}
	stream := keys.Scope("marketing", tenant).Stream()
	waitFor(t, "the reactions to the captures", func() []redis.XInfoGroup {
		groups, err := sys.rdb.XInfoGroups(context.Background(), stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		return groups
	}, func(groups []redis.XInfoGroup) bool {
		for _, g := range groups {
			if g.Lag != 0 || g.Pending != 0 {
				return false
			}
		}
		return len(groups) > 0
	})
	names := map[string]string{} // client address -> connection name
	for _, line := range strings.Split(sys.rdb.ClientList(context.Background()).Val(), "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		names[fields["addr"]] = fields["name"]
	}

	// MONITOR lists commands in the order Redis ran them: what came before the marker is read when
	// the marker is.
	marker := "monitor-mark-" + tenant
	if err := sys.rdb.Echo(context.Background(), marker).Err(); err != nil {
		t.Fatal(err)
	}
	// The top-level commands about this tenant (its keys name it), by connection name.
	byName := map[string][]string{}
	for line := range lines {
		if strings.Contains(line, marker) {
			break
		}
		m := monitorLine.FindStringSubmatch(line)
		if m == nil || m[1] == "lua" || !strings.Contains(line, ":"+tenant+":") {
			continue
		}
		byName[names[m[1]]] = append(byName[names[m[1]]], strings.ToLower(m[2]))
	}
	if got := byName["crm"]; len(got) != captures || strings.Count(strings.Join(got, " "), "evalsha") != captures {
		t.Errorf("the request path's connections sent %d commands about the tenant, want %d EVALSHA (one per capture): %v",
			len(got), captures, got)
	}
	if len(byName["crm-react"]) == 0 {
		t.Errorf("the reactions' connections sent no command about the tenant (the recorder's, marketing's): %v", byName)
	}
	for name, cmds := range byName {
		if name != "crm" && name != "crm-react" {
			t.Errorf("connection %q sent %d commands about the tenant: %v", name, len(cmds), cmds)
		}
	}
}

// monitor runs MONITOR on a connection of its own to the test's Redis and returns its lines (the
// first is "OK"); the connection closes when the test ends.
func monitor(t *testing.T) chan string {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", opts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1_000_000)
	go func() {
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimPrefix(strings.TrimSuffix(line, "\r\n"), "+")
		}
	}()
	return lines
}
