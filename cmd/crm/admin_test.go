package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/telemetry"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
)

func crmCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append(args, "--redis-url", redistest.URL()), &out)
	return out.String(), err
}

// initStore initializes the package's Redis as a process's first start would (the key commands
// refuse a store nothing initialized), so a test of them runs alone too.
func initStore(t *testing.T) {
	t.Helper()
	if _, err := keyspace.Open(context.Background(), redistest.Client(t), 16); err != nil {
		t.Fatal(err)
	}
}

func TestAdminTenantsAndKeys(t *testing.T) {
	tenant := redistest.Tenant(t)
	initStore(t)
	out, err := crmCommand(t, "admin", "tenant", "create", "--id", tenant, "--name", "Acme")
	if err != nil || !strings.Contains(out, "tenant "+tenant+" created") {
		t.Fatalf("tenant create: %v %q", err, out)
	}
	if _, err := crmCommand(t, "admin", "tenant", "create", "--id", tenant, "--name", "Again"); !errors.Is(err, auth.ErrTenantExists) {
		t.Fatalf("second tenant create: %v, want ErrTenantExists", err)
	}
	out, err = crmCommand(t, "admin", "key", "create", "--tenant", tenant, "--scopes", "marketing.read,sales.write")
	if err != nil {
		t.Fatalf("key create: %v %q", err, out)
	}
	_, secret, _ := strings.Cut(out, "secret (shown once, store it now): ")
	p, err := auth.NewStore(redistest.Client(t)).Lookup(context.Background(), strings.TrimSpace(secret))
	if err != nil || p.TenantID != tenant || !p.Allows("marketing.read") || p.Allows("marketing.write") {
		t.Fatalf("printed key resolves to %+v, %v", p, err)
	}
	for _, args := range [][]string{
		{"admin", "key", "create", "--tenant", tenant, "--scopes", "marketing.everything"},
		{"admin", "key", "create", "--tenant", "no-such-tenant", "--scopes", "admin"},
		{"admin", "tenant", "create", "--id", "Bad Id!", "--name", "x"},
		{"admin", "tenant", "delete"},
	} {
		if _, err := crmCommand(t, args...); err == nil {
			t.Errorf("%v succeeded, want an error", args)
		}
	}
}

func TestAdminEventsLagAndDeadLetters(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(ctx, rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	producer, tenant := "admintest", redistest.Tenant(t)
	pub := events.Publisher{Producer: producer, Propagator: telemetry.ForTest(tracenoop.NewTracerProvider(), nil).Propagator}
	failed := eventv1.Type[*wrapperspb.StringValue]{Name: "admintest.thing.failed"}
	ev, data, err := pub.Envelope(ctx, failed.Of(wrapperspb.String("x")), tenant, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.New().Append(keys.Scope(producer, tenant).Stream(), data).Run(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	// A group whose handler always fails dead-letters the event after one delivery.
	consumer, err := events.NewConsumer(events.ConsumerConfig{Name: "admin-test", Block: 50 * time.Millisecond, MaxDeliveries: 1},
		events.Subscription{Group: "failing", Producer: producer, Handle: func(context.Context, *eventv1.Event) error {
			return errors.New("handler is broken")
		}}, rdb, keys, telemetry.ForTest(tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dead, err := events.DeadLetters(ctx, rdb, keys, producer, "failing", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("event not dead-lettered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	out, err := crmCommand(t, "admin", "events", "lag", "--producer", producer)
	if err != nil || !strings.Contains(out, "failing") || !strings.Contains(out, "DEAD LETTERS") {
		t.Fatalf("events lag: %v\n%s", err, out)
	}
	out, err = crmCommand(t, "admin", "events", "dlq", "list", "--producer", producer, "--group", "failing")
	if err != nil || !strings.Contains(out, ev.GetId()) || !strings.Contains(out, "handler is broken") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	out, err = crmCommand(t, "admin", "events", "dlq", "replay", "--producer", producer, "--group", "failing")
	if err != nil || !strings.Contains(out, "replayed 1 dead letters") {
		t.Fatalf("dlq replay: %v %q", err, out)
	}
	if n, _ := rdb.XLen(ctx, keys.Scope(producer, tenant).Stream()).Result(); n != 2 {
		t.Fatalf("stream has %d entries after replay, want the original and the replayed one", n)
	}
	out, err = crmCommand(t, "admin", "events", "dlq", "purge", "--producer", producer, "--group", "failing")
	if err != nil || !strings.Contains(out, "purged 0 dead letters") {
		t.Fatalf("dlq purge after replay: %v %q", err, out)
	}
	if _, err := crmCommand(t, "admin", "events", "dlq", "replay", "--producer", producer, "--group", "failing", "99/1-0"); err == nil {
		t.Fatal("replay of a ref outside the partitions succeeded")
	}
}

// TestLostRedisDataRefusesWritesUntilInit: when Redis loses a partition's data while the process
// serves it (here its marker is deleted, as a restart without persistence or a flush would), a
// write into that partition is 503 with Retry-After and writes nothing, until `crm admin redis
// init` re-initializes it; reads are not refused, and /readyz is 503 meanwhile.
func TestLostRedisDataRefusesWritesUntilInit(t *testing.T) {
	sys := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tenant, key := sys.newKey(t, "", "marketing.read", "marketing.write")
	if r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"before@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	space, err := keyspace.Load(context.Background(), sys.rdb)
	if err != nil {
		t.Fatal(err)
	}
	marker := keyspace.MarkerKey("p" + strconv.Itoa(space.Partition(tenant)))
	if err := sys.rdb.Del(context.Background(), marker).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = keyspace.Open(context.Background(), sys.rdb, space.Partitions()) })

	r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"lost@example.com"}`))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "STORE_NOT_INITIALIZED") {
		t.Fatalf("capture after the data loss: %d (Retry-After %q) %s, want 503 STORE_NOT_INITIALIZED with Retry-After",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := sys.do(t, http.MethodGet, "/v1/leads?filter="+url.QueryEscape(`email = "lost@example.com"`), key, nil); r.status != http.StatusOK ||
		strings.Contains(string(r.body), "lost@example.com") {
		t.Fatalf("the refused capture is listed, or the list failed: %d %s", r.status, r.body)
	}
	// Readiness says so, and what to run, on the public port too (a probe takes the process out of
	// rotation rather than let it answer writes 503).
	initCmd := "crm admin redis init --partitions " + strconv.Itoa(space.Partitions())
	if r := sys.do(t, http.MethodGet, "/readyz", "", nil); r.status != http.StatusServiceUnavailable ||
		!strings.Contains(string(r.body), "not initialized") || !strings.Contains(string(r.body), initCmd) {
		t.Fatalf("/readyz after the data loss: %d %s, want 503 saying the store is not initialized and %q", r.status, r.body, initCmd)
	}
	health, err := healthpb.NewHealthClient(sys.grpc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitHealth(t, health, healthpb.HealthCheckResponse_NOT_SERVING)
	// An init with another count than the store's is refused and changes nothing.
	other := strconv.Itoa(space.Partitions() / 2)
	if out, err := crmCommand(t, "admin", "redis", "init", "--partitions", other); !errors.Is(err, keyspace.ErrPartitionMismatch) ||
		!strings.Contains(err.Error(), "--force") {
		t.Fatalf("redis init --partitions %s on a store of %d: %v %q, want a refusal naming --force", other, space.Partitions(), err, out)
	}
	if n, err := sys.rdb.Exists(context.Background(), marker).Result(); err != nil || n != 0 {
		t.Fatalf("the refused init marked the partition: %d %v", n, err)
	}
	// A flush takes the recorded count too: a key command then refuses, naming redis init, and
	// does not initialize the store on the way (re-initializing is the operator's decision).
	if err := sys.rdb.Del(context.Background(), keyspace.PartitionsKey).Err(); err != nil {
		t.Fatal(err)
	}
	if out, err := crmCommand(t, "admin", "key", "create", "--tenant", tenant, "--scopes", "admin"); !errors.Is(err, keyspace.ErrNotInitialized) ||
		!strings.Contains(err.Error(), initCmd) {
		t.Fatalf("key create on a flushed store: %v %q, want a refusal naming %q", err, out, initCmd)
	}
	if n, err := sys.rdb.Exists(context.Background(), keyspace.PartitionsKey, marker).Result(); err != nil || n != 0 {
		t.Fatalf("the refused key create initialized the store: %d keys %v", n, err)
	}
	out, err := crmCommand(t, "admin", "redis", "init", "--partitions", strconv.Itoa(space.Partitions()))
	if err != nil || !strings.Contains(out, "redis initialized") {
		t.Fatalf("redis init: %v %q", err, out)
	}
	if r := sys.do(t, http.MethodGet, "/readyz", "", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz after redis init: %d %s", r.status, r.body)
	}
	waitHealth(t, health, healthpb.HealthCheckResponse_SERVING)
	if r := sys.do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"after@example.com"}`)); r.status != http.StatusOK {
		t.Fatalf("capture after redis init: %d %s", r.status, r.body)
	}
}

// waitHealth reads a gRPC health stream until it reports want (the test's deadline bounds it).
func waitHealth(t *testing.T, stream healthpb.Health_WatchClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("health Watch: got %v while waiting for %v", err, want)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

func TestAdminKeyLifecycle(t *testing.T) {
	initStore(t)
	tenant := redistest.Tenant(t)
	if _, err := crmCommand(t, "admin", "tenant", "create", "--id", tenant, "--name", "Acme"); err != nil {
		t.Fatal(err)
	}
	out, err := crmCommand(t, "admin", "key", "create", "--tenant", tenant, "--scopes", "sales.read", "--name", "billing sync", "--expire-in", "24h")
	if err != nil {
		t.Fatalf("key create: %v %q", err, out)
	}
	_, secret, _ := strings.Cut(out, "secret (shown once, store it now): ")
	secret = strings.TrimSpace(secret)
	store := auth.NewStore(redistest.Client(t))
	ctx := context.Background()
	p, err := store.Lookup(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	out, err = crmCommand(t, "admin", "key", "list", "--tenant", tenant)
	if err != nil || !strings.Contains(out, p.KeyID) || !strings.Contains(out, "billing sync") || !strings.Contains(out, "sales.read") {
		t.Fatalf("key list: %v %q; want the key, its name and scopes", err, out)
	}
	if strings.Contains(out, secret) {
		t.Fatal("key list prints the secret")
	}
	out, err = crmCommand(t, "admin", "key", "rotate", "--tenant", tenant, "--key", p.KeyID, "--overlap", "1h")
	_, rotated, _ := strings.Cut(out, "secret (shown once, store it now): ")
	if err != nil || strings.TrimSpace(rotated) == "" {
		t.Fatalf("key rotate: %v %q", err, out)
	}
	for _, s := range []string{secret, strings.TrimSpace(rotated)} {
		if _, err := store.Lookup(ctx, s); err != nil {
			t.Errorf("within the overlap, a secret is refused: %v", err)
		}
	}
	if out, err := crmCommand(t, "admin", "key", "revoke", "--tenant", tenant, "--key", p.KeyID); err != nil {
		t.Fatalf("key revoke: %v %q", err, out)
	}
	for _, s := range []string{secret, strings.TrimSpace(rotated)} {
		if _, err := store.Lookup(ctx, s); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("a revoked key's secret: got %v, want ErrUnauthenticated", err)
		}
	}
	for _, args := range [][]string{
		{"admin", "key", "revoke", "--tenant", "other-tenant", "--key", p.KeyID},
		{"admin", "key", "rotate", "--tenant", tenant},
		{"admin", "key", "list", "--tenant", tenant, "--producer", "sales"},
	} {
		if _, err := crmCommand(t, args...); err == nil {
			t.Errorf("%v succeeded, want an error", args)
		}
	}
}

func TestAdminHelpListsEachCommandsFlags(t *testing.T) {
	out, err := crmCommand(t, "admin", "--help")
	if err != nil {
		t.Fatalf("crm admin --help: %v", err)
	}
	_, perCommand, _ := strings.Cut(out, "Commands and their flags:")
	for _, c := range adminCommands {
		_, section, ok := strings.Cut(perCommand, "crm admin "+c+"\n")
		if !ok {
			t.Fatalf("help lacks %q", c)
		}
		section, _, _ = strings.Cut(section, "  crm admin ")
		for _, f := range adminFlags[c] {
			if !isRedisFlag(f) && !strings.Contains(section, "--"+f) {
				t.Errorf("help of %q lacks --%s", c, f)
			}
		}
	}
	if !strings.Contains(out, "--redis-url") {
		t.Error("help lacks the shared --redis-url")
	}
}

// TestAdminKeyChangesAreAudited: a key crm admin creates, rotates and revokes is in the tenant's
// audit log as the API's are: integration.api_key.created, .rotated and .revoked on the
// integration stream, each naming the key, by the operator's tool ("operator:cli").
func TestAdminKeyChangesAreAudited(t *testing.T) {
	initStore(t)
	tenant := redistest.Tenant(t)
	if _, err := crmCommand(t, "admin", "tenant", "create", "--id", tenant, "--name", "Acme"); err != nil {
		t.Fatal(err)
	}
	out, err := crmCommand(t, "admin", "key", "create", "--tenant", tenant, "--scopes", "sales.read")
	if err != nil {
		t.Fatalf("key create: %v %q", err, out)
	}
	_, secret, _ := strings.Cut(out, "secret (shown once, store it now): ")
	ctx := context.Background()
	p, err := auth.NewStore(redistest.Client(t)).Lookup(ctx, strings.TrimSpace(secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"admin", "key", "rotate", "--tenant", tenant, "--key", p.KeyID},
		{"admin", "key", "revoke", "--tenant", tenant, "--key", p.KeyID},
		{"admin", "key", "list", "--tenant", tenant}, // a read: no event
	} {
		if out, err := crmCommand(t, args...); err != nil {
			t.Fatalf("%v: %v %q", args, err, out)
		}
	}
	rdb := redistest.Client(t)
	space, err := keyspace.Load(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRange(ctx, space.Scope("integration", tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		data, _ := m.Values["e"].(string)
		ev, err := events.Decode([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetTenantId() != tenant {
			continue // the partition's stream holds the events of every tenant it has
		}
		changed := &integrationv1.ApiKeyChanged{}
		if err := ev.GetPayload().UnmarshalTo(changed); err != nil || changed.GetApiKeyId() != p.KeyID {
			t.Errorf("%s about %q (%v), want key %s", ev.GetType(), changed.GetApiKeyId(), err, p.KeyID)
		}
		if ev.GetActor().GetOperator() != "cli" || ev.GetRequestId() == "" {
			t.Errorf("%s: actor %v, request %q; want operator cli with a request id", ev.GetType(), ev.GetActor(), ev.GetRequestId())
		}
		got = append(got, ev.GetType())
	}
	if want := []string{"integration.api_key.created", "integration.api_key.rotated", "integration.api_key.revoked"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}
