package integration_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

// rig is the integration domain over one Redis: its recorder, endpoints, settings and history
// reads, with a stopped dispatcher (recorded deliveries stay queued, unsent).
type rig struct {
	recorder  *integration.Recorder
	endpoints *integration.Endpoints
	settings  *integration.Settings
	history   *integration.History
	store     *redisstore.Store
}

// recorderOn is the rig over rdb with clock now.
func recorderOn(t testing.TB, rdb redis.UniversalClient, now func() time.Time) *rig {
	t.Helper()
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys)
	pub := events.Publisher{Producer: "integration", Propagator: propagation.TraceContext{}}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	endpoints := integration.NewEndpoints(store, pub, v, true, now)
	dispatcher := integration.NewDispatcher(integration.DispatchConfig{AllowPrivate: true}, store, endpoints, slog.New(slog.NewTextHandler(io.Discard, nil)), now, nil)
	endpoints.Attach(dispatcher)
	stopped, stop := context.WithCancel(context.Background())
	stop()
	_ = dispatcher.Run(stopped)
	settings := integration.NewSettings(store, pub, now)
	return &rig{recorder: integration.NewRecorder(store, settings, dispatcher, now), endpoints: endpoints,
		settings: settings, history: integration.NewHistory(store, everyoneKnown{}), store: store}
}

// everyoneKnown is marketing's registry as the rig's timelines need it: every customer exists.
type everyoneKnown struct{}

func (everyoneKnown) Check(context.Context, string, string, string) error { return nil }

// commandStats reads how many times Redis ran each command, scripts' calls included.
func commandStats(t testing.TB, rdb redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		out[name], _ = strconv.Atoi(calls)
	}
	return out
}

// event is an event of typ about customer caused by a request of key, as a service's write makes.
func event(t testing.TB, tenant, typ, customer, key, request string) *eventv1.Event {
	t.Helper()
	producer, _, _ := strings.Cut(typ, ".")
	ctx := events.WithCause(context.Background(), events.ByKey(key, request, "/crm.test.v1.Test/Write"))
	ev, _, err := events.Publisher{Producer: producer, Propagator: propagation.TraceContext{}}.Envelope(ctx, eventv1.Type[*wrapperspb.StringValue]{Name: typ}.Of(wrapperspb.String("x")), tenant, customer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestRecordingAnEventIsOneScriptWithoutTrimming counts what recording costs Redis, on a server
// of its own: one script call per event, and inside it no trimming and no expiry beyond a new
// delivery's own (the retention sweep trims the history by age instead). Redis's own command
// statistics count the script's commands; the client hook counts the round trips. Before the
// sweep, each of these events cost 7 ZREMRANGEBYLEX and 9 PEXPIRE.
func TestRecordingAnEventIsOneScriptWithoutTrimming(t *testing.T) {
	rdb := redistest.NewServer(t).Client(t)
	r := recorderOn(t, rdb, time.Now)
	recorder, endpoints := r.recorder, r.endpoints
	const tenant = "t-cost"
	ctx := context.Background()
	if _, err := endpoints.Create(ctx, admin(tenant), &integrationv1.WebhookEndpoint{Url: "http://127.0.0.1:1/hook", EventTypes: []string{"sales.*"}}); err != nil {
		t.Fatal(err)
	}
	// The first event reads the settings and endpoints and registers the tenant: not counted.
	if err := recorder.Record(ctx, event(t, tenant, "sales.deal.won", "c-0", "key-1", "req-0")); err != nil {
		t.Fatal(err)
	}
	const n = 50
	commands := &redistest.Commands{}
	rdb.AddHook(commands)
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	commands.Take()
	for i := range n {
		// Every index: all, actor, type, resource, request and the customer's timeline; and one
		// delivery (sales.* matches).
		if err := recorder.Record(ctx, event(t, tenant, "sales.deal.won", "c-"+strconv.Itoa(i), "key-1", "req-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	trips, scripts := commands.Trips(), commands.Count("evalsha")
	sent := commands.Take()
	stats := commandStats(t, rdb)
	t.Logf("%d events: %d round trips %v; Redis ran %v", n, trips, sent, stats)
	if trips != n || len(sent) != n || scripts != n {
		t.Errorf("%d round trips (%v) for %d events, want one script call each", trips, sent, n)
	}
	for _, name := range []string{"zremrangebylex", "zremrangebyscore", "expire"} {
		if stats[name] != 0 {
			t.Errorf("recording ran %s %d times for %d events, want none (the sweep trims)", name, stats[name], n)
		}
	}
	// One expiry per new delivery record; the history has none (the sweep removes it by age).
	if got := stats["pexpire"]; got != n {
		t.Errorf("recording ran PEXPIRE %d times for %d events with a delivery each, want %d (once per new delivery)", got, n, n)
	}
}

// TestAnExportsAuditEntryNamesItsFilter: the audit entry of an export says what was read and how:
// its filter, quoted (an export of every record has none), and its format.
func TestAnExportsAuditEntryNamesItsFilter(t *testing.T) {
	r := recorderOn(t, redistest.Client(t), time.Now)
	tenant, ctx := redistest.Tenant(t), events.WithCause(context.Background(), events.ByKey("key-1", "req-1", marketingv1.MarketingService_ExportLeads_FullMethodName))
	for _, x := range []*eventv1.Exported{{Resource: "leads", Filter: `tags:"vip" AND channel = CHANNEL_WEB`, Format: "csv"}, {Resource: "leads", Format: "grpc"}} {
		ev, _, err := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}.Envelope(ctx,
			marketingv1.EventLeadsExported.Of(x), tenant, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.recorder.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := r.history.Audit(context.Background(), tenant, integration.AuditQuery{}, page.Request{Limit: 10})
	if err != nil || len(entries.Items) != 2 {
		t.Fatalf("audit log: %v %v", entries.Items, err)
	}
	// Newest first.
	if got, want := entries.Items[1].GetSummary(), `Lead exported (filter "tags:\"vip\" AND channel = CHANNEL_WEB", format csv)`; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if got, want := entries.Items[0].GetSummary(), "Lead exported (format grpc)"; got != want {
		t.Errorf("summary of an export of every record %q, want %q", got, want)
	}
}

// TestSummariesQuoteTheChangesRecord: a stage change's summary says from which stage to which, a
// loyalty booking how many points, from the record the payload embeds; its free text (the move's
// cause, the entry's reason) stays out.
func TestSummariesQuoteTheChangesRecord(t *testing.T) {
	r := recorderOn(t, redistest.Client(t), time.Now)
	tenant, ctx := redistest.Tenant(t), events.WithCause(context.Background(), events.ByKey("key-1", "req-1", "/test"))
	pub := events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}
	moved, _, err := pub.Envelope(ctx, marketingv1.EventLifecycleStageChanged.Of(&marketingv1.LifecycleStageChanged{
		CustomerId: "c-1", Move: &marketingv1.StageMove{From: marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT,
			To: marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT, Cause: "Ada's first e-mail"}}), tenant, "c-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	credited, _, err := pub.Envelope(ctx, marketingv1.EventLoyaltyPointsCredited.Of(&marketingv1.LoyaltyPointsBooked{
		CustomerId: "c-1", Entry: &marketingv1.LedgerEntry{Id: "e-1", Points: 200, Reason: "Ada's welcome"}}), tenant, "c-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*eventv1.Event{moved, credited} {
		if err := r.recorder.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := r.history.Audit(context.Background(), tenant, integration.AuditQuery{}, page.Request{Limit: 10})
	if err != nil || len(entries.Items) != 2 {
		t.Fatalf("audit log: %v %v", entries.Items, err)
	}
	want := []string{"Loyalty points credited (points 200)", "Lifecycle stage changed (from LIFECYCLE_STAGE_SUSPECT, to LIFECYCLE_STAGE_PROSPECT)"}
	for i, e := range entries.Items { // newest first
		if e.GetSummary() != want[i] {
			t.Errorf("summary %q, want %q", e.GetSummary(), want[i])
		}
	}
}

// TestAuditFiltersFindSettingsKeysAndEndpoints: the settings' entry is found by
// resource = "integration.settings/tenant", an endpoint's by its id, and a key change crm admin
// made (by the operator's tool) by actor = "operator:cli", each filter through its index.
func TestAuditFiltersFindSettingsKeysAndEndpoints(t *testing.T) {
	r := recorderOn(t, redistest.Client(t), time.Now)
	tenant := redistest.Tenant(t)
	pub := events.Publisher{Producer: "integration", Propagator: propagation.TraceContext{}}
	byKey := events.WithCause(context.Background(), events.ByKey("key-1", "req-1", "/test"))
	byCLI := events.WithCause(context.Background(), events.ByOperator("cli"))
	bodies := []struct {
		ctx  context.Context
		body eventv1.Body
	}{
		{byKey, integrationv1.EventSettingsUpdated.Of(&integrationv1.SettingsChanged{Settings: &integrationv1.IntegrationSettingsFacts{AuditRetentionDays: 90}})},
		{byKey, integrationv1.EventWebhookEndpointUpdated.Of(&integrationv1.WebhookEndpointChanged{EndpointId: "ep-1"})},
		{byCLI, integrationv1.EventApiKeyRevoked.Of(&integrationv1.ApiKeyChanged{ApiKeyId: "key-2"})},
	}
	for _, b := range bodies {
		ev, _, err := pub.Envelope(b.ctx, b.body, tenant, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.recorder.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	for filter, want := range map[string]string{
		`resource = "integration.settings/tenant"`:       "integration.settings.updated",
		`resource = "integration.webhook_endpoint/ep-1"`: "integration.webhook_endpoint.updated",
		`actor = "operator:cli"`:                         "integration.api_key.revoked",
		`resource = "integration.api_key/key-2"`:         "integration.api_key.revoked",
	} {
		q, err := integration.ParseAuditFilter(filter)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.history.Audit(context.Background(), tenant, q, page.Request{Limit: 10})
		if err != nil || len(p.Items) != 1 || p.Items[0].GetEventType() != want {
			t.Errorf("%s: %v %v, want one %s", filter, p.Items, err, want)
		}
	}
}

// admin is a caller allowed everything in tenant, for the use cases that check the caller's scopes.
func admin(tenant string) auth.Principal {
	return auth.Principal{TenantID: tenant, Scopes: []string{auth.ScopeAdmin}}
}
