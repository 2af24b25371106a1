package rpc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fastWebhooks retries at once-ish and times attempts out quickly, on loopback receivers.
var fastWebhooks = integration.DispatchConfig{
	Timeout: 500 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	Poll: 50 * time.Millisecond, AllowPrivate: true,
}

// system is the integration service on the real gRPC server over a real Redis, consuming the
// streams of every service.
type system struct {
	suite    *servicetest.Suite
	tenant   string
	key      string
	registry *servicetest.Registry
}

func startSystem(t *testing.T, cfg integration.DispatchConfig) *system {
	t.Helper()
	registry := &servicetest.Registry{}
	suite := servicetest.Start(t, servicetest.Options{
		Services: []servicetest.Builder{func(d platform.Deps) (platform.Service, error) {
			return server.New(server.Config{Webhooks: cfg}, d)
		}},
		Fakes:      []func(grpc.ServiceRegistrar){registry.Register},
		Background: true,
	})
	tenant, key := suite.NewKey(t, "", "admin")
	return &system{suite: suite, tenant: tenant, key: key, registry: registry}
}

func (s *system) client() (integrationv1.IntegrationServiceClient, context.Context) {
	return integrationv1.NewIntegrationServiceClient(s.suite.Conn), servicetest.WithKey(context.Background(), s.key)
}

// publish commits an event of type typ about customer on its producer's stream, as the producing
// service's write would; the integration service consumes it like any other.
func (s *system) publish(t testing.TB, tenant, typ, customer string) *eventv1.Event {
	t.Helper()
	var body eventv1.Body
	if typ == "sales.order.placed" {
		body = salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: "order-1", CustomerId: customer}})
	} else {
		body = eventv1.Type[*wrapperspb.StringValue]{Name: typ}.Of(wrapperspb.String("x"))
	}
	return s.publishBody(t, tenant, body, customer)
}

// publishBody commits an event with body about customer on its producer's stream.
func (s *system) publishBody(t testing.TB, tenant string, body eventv1.Body, customer string) *eventv1.Event {
	t.Helper()
	return s.publishBodyAt(t, tenant, body, customer, time.Now())
}

// publishBodyAt commits an event with body about customer that occurred at the given time.
func (s *system) publishBodyAt(t testing.TB, tenant string, body eventv1.Body, customer string, at time.Time) *eventv1.Event {
	t.Helper()
	producer, _, _ := strings.Cut(body.Type(), ".")
	pub := events.Publisher{Producer: producer, Propagator: s.suite.Telemetry.Propagator}
	ctx := events.WithCause(context.Background(), events.ByKey("test-key", "req-test", "/test"))
	ev, data, err := pub.Envelope(ctx, body, tenant, customer, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.New().Append(s.suite.Deps.Keys.Scope(producer, tenant).Stream(), data).Run(ctx, s.suite.Redis); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (s *system) createEndpoint(t *testing.T, url string, types ...string) *integrationv1.WebhookEndpoint {
	t.Helper()
	c, ctx := s.client()
	resp, err := c.CreateWebhookEndpoint(ctx, &integrationv1.CreateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Url: url, EventTypes: types}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetWebhookEndpoint()
}

// received is one request a receiver got, its signature checked.
type received struct {
	ID       string
	Type     string
	Sequence int64
	Customer string
	EventID  string
}

// receiver is a real HTTP server on loopback that checks every request's Standard Webhooks
// signature with its own implementation (not the service's library), and answers with answer.
type receiver struct {
	*httptest.Server
	t       testing.TB
	mu      sync.Mutex
	secrets []string
	got     []received
	bad     []string
	answer  func(n int, r received) (status int, header http.Header)
	calls   int
}

func newReceiver(t testing.TB, answer func(n int, r received) (int, http.Header)) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setSecret(secrets ...string) {
	rc.mu.Lock()
	rc.secrets = secrets
	rc.mu.Unlock()
}

// verify is the Standard Webhooks check, written from the spec: base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>" keyed with the secret's base64-decoded bytes after "whsec_"; the
// signature header lists "v1,<sig>" entries separated by spaces, any one matching is enough.
func verify(secret, id, timestamp string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		if v, s, ok := strings.Cut(sig, ","); ok && v == "v1" && hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Type     string `json:"type"`
		Sequence int64  `json:"sequence"`
		Data     struct {
			ID         string `json:"id"`
			CustomerID string `json:"customerId"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	got := received{ID: r.Header.Get("webhook-id"), Type: msg.Type, Sequence: msg.Sequence, Customer: msg.Data.CustomerID, EventID: msg.Data.ID}
	rc.mu.Lock()
	secrets := rc.secrets
	n := rc.calls
	rc.calls++
	ok := false
	for _, s := range secrets {
		ok = ok || verify(s, got.ID, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"))
	}
	if !ok {
		rc.bad = append(rc.bad, got.ID)
	}
	rc.mu.Unlock()
	status, header := rc.answer(n, got)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	if status >= 200 && status < 300 {
		rc.mu.Lock()
		rc.got = append(rc.got, got)
		rc.mu.Unlock()
	}
}

func (rc *receiver) accepted() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) unsigned() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bad...)
}

func ok200(int, received) (int, http.Header) { return http.StatusOK, nil }

// eventually polls cond until it holds, failing after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
