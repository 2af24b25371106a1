package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/events"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/integration"
)

func deliveries(t *testing.T, s *system, endpoint string) []*integrationv1.Delivery {
	t.Helper()
	c, ctx := s.client()
	resp, err := c.ListDeliveries(ctx, &integrationv1.ListDeliveriesRequest{EndpointId: endpoint, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDeliveries()
}

func TestFailingDeliveryIsRetriedSignedAndLogged(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n < 2 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	if ep.GetSecret() == "" {
		t.Fatal("create returned no secret")
	}
	rc.setSecret(ep.GetSecret())
	ev := s.publish(t, s.tenant, "sales.order.placed", "cust-1")
	eventually(t, 10*time.Second, "the delivery", func() bool { return len(rc.accepted()) == 1 })
	if bad := rc.unsigned(); len(bad) != 0 {
		t.Errorf("requests failing the signature check: %v", bad)
	}
	got := rc.accepted()[0]
	if got.EventID != ev.GetId() || got.Type != "sales.order.placed" || got.Sequence != 1 || got.Customer != "cust-1" {
		t.Errorf("received %+v, want event %s, its type, sequence 1, cust-1", got, ev.GetId())
	}
	var d *integrationv1.Delivery
	eventually(t, 5*time.Second, "the delivery logged as delivered", func() bool {
		ds := deliveries(t, s, ep.GetId())
		if len(ds) == 1 && ds[0].GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DELIVERED {
			d = ds[0]
			return true
		}
		return false
	})
	if d.GetAttemptCount() != 3 || len(d.GetAttempts()) != 3 {
		t.Fatalf("delivery %v: want 3 attempts logged", d)
	}
	for i, want := range []int32{500, 500, 200} {
		if d.GetAttempts()[i].GetStatusCode() != want {
			t.Errorf("attempt %d: status %d, want %d", i, d.GetAttempts()[i].GetStatusCode(), want)
		}
	}
	if d.GetId() != got.ID || d.GetSequence() != 1 {
		t.Errorf("delivery id %s sequence %d; the receiver saw webhook-id %s", d.GetId(), d.GetSequence(), got.ID)
	}
	// Endpoints read back never show the secret.
	c, ctx := s.client()
	read, err := c.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
	if err != nil || read.GetWebhookEndpoint().GetSecret() != "" {
		t.Errorf("GetWebhookEndpoint: %v, %v; want no secret", read, err)
	}
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	rc := newReceiver(t, func(int, received) (int, http.Header) { return http.StatusGone, nil })
	ep := s.createEndpoint(t, rc.URL, "sales.order.placed")
	s.publish(t, s.tenant, "sales.order.placed", "cust-1")
	c, ctx := s.client()
	eventually(t, 10*time.Second, "the endpoint disabled", func() bool {
		r, err := c.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
		return err == nil && !r.GetWebhookEndpoint().GetEnabled() && r.GetWebhookEndpoint().GetDisabledReason() != ""
	})
	ds := deliveries(t, s, ep.GetId())
	if len(ds) != 1 || ds[0].GetState() != integrationv1.DeliveryState_DELIVERY_STATE_DEAD || ds[0].GetAttemptCount() != 1 {
		t.Fatalf("deliveries %v, want one DEAD after one attempt", ds)
	}
	// Dead-lettered deliveries replay on demand once the endpoint is back.
	rc.answer = ok200
	if _, err := c.UpdateWebhookEndpoint(ctx, &integrationv1.UpdateWebhookEndpointRequest{
		WebhookEndpoint: &integrationv1.WebhookEndpoint{Id: ep.GetId(), Enabled: proto.Bool(true)}, UpdateMask: mask("enabled")}); err != nil {
		t.Fatal(err)
	}
	rc.setSecret(ep.GetSecret())
	if _, err := c.RetryDelivery(ctx, &integrationv1.RetryDeliveryRequest{EndpointId: ep.GetId(), Id: ds[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replayed delivery", func() bool { return len(rc.accepted()) == 1 })
	if got := rc.accepted()[0]; got.ID != ds[0].GetId() {
		t.Errorf("replay webhook-id %s, want the delivery's %s", got.ID, ds[0].GetId())
	}
}

// A failed delivery waiting out a long backoff is sent at once when retried by hand, keeps its
// creation time, and records the retry; a retry of a delivered one sends it again.
func TestRetryByHandSkipsTheBackoff(t *testing.T) {
	slow := fastWebhooks
	slow.Backoff, slow.MaxBackoff = time.Hour, time.Hour
	s := startSystem(t, slow)
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n == 0 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	rc.setSecret(ep.GetSecret())
	s.publish(t, s.tenant, "sales.order.placed", "cust-1")
	var failed *integrationv1.Delivery
	eventually(t, 10*time.Second, "the first attempt failed", func() bool {
		ds := deliveries(t, s, ep.GetId())
		if len(ds) == 1 && ds[0].GetAttemptCount() == 1 {
			failed = ds[0]
			return true
		}
		return false
	})
	if failed.GetState() != integrationv1.DeliveryState_DELIVERY_STATE_PENDING || time.Until(failed.GetNextAttemptTime().AsTime()) < 30*time.Minute {
		t.Fatalf("delivery %v: want PENDING with its next attempt about an hour away", failed)
	}
	c, ctx := s.client()
	for round := 1; round <= 2; round++ { // PENDING, then DELIVERED
		resp, err := c.RetryDelivery(ctx, &integrationv1.RetryDeliveryRequest{EndpointId: ep.GetId(), Id: failed.GetId()})
		if err != nil {
			t.Fatalf("retry %d: %v", round, err)
		}
		r := resp.GetDelivery()
		if r.GetState() != integrationv1.DeliveryState_DELIVERY_STATE_PENDING || r.GetRetryTime() == nil ||
			!r.GetCreateTime().AsTime().Equal(failed.GetCreateTime().AsTime()) {
			t.Errorf("retry %d answered %v: want PENDING, a retryTime and the createTime %v", round, r, failed.GetCreateTime().AsTime())
		}
		eventually(t, 10*time.Second, "the retried delivery sent", func() bool { return len(rc.accepted()) == round })
		eventually(t, 5*time.Second, "the delivery logged as delivered", func() bool {
			ds := deliveries(t, s, ep.GetId())
			return ds[0].GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DELIVERED && ds[0].GetAttemptCount() == int32(round+1)
		})
	}
	if got := rc.accepted(); got[0].ID != failed.GetId() || got[1].ID != failed.GetId() {
		t.Errorf("webhook-ids %s, %s; want the delivery's %s both times", got[0].ID, got[1].ID, failed.GetId())
	}
}

// A dead delivery retried by hand gets a fresh MaxAge of automatic retries, counted from the
// retry, not from its creation.
func TestRetryByHandRestartsTheRetryWindow(t *testing.T) {
	short := fastWebhooks
	short.MaxAge, short.PauseAfter = time.Second, 1000
	s := startSystem(t, short)
	rc := newReceiver(t, func(int, received) (int, http.Header) { return http.StatusInternalServerError, nil })
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	s.publish(t, s.tenant, "sales.order.placed", "cust-1")
	dead := func() *integrationv1.Delivery {
		var d *integrationv1.Delivery
		eventually(t, 10*time.Second, "the delivery dead", func() bool {
			ds := deliveries(t, s, ep.GetId())
			if len(ds) == 1 && ds[0].GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DEAD {
				d = ds[0]
				return true
			}
			return false
		})
		return d
	}
	first := dead()
	c, ctx := s.client()
	if _, err := c.RetryDelivery(ctx, &integrationv1.RetryDeliveryRequest{EndpointId: ep.GetId(), Id: first.GetId()}); err != nil {
		t.Fatal(err)
	}
	second := dead()
	if n := second.GetAttemptCount() - first.GetAttemptCount(); n < 2 {
		t.Errorf("%d attempts after the retry by hand, want several within its fresh %v", n, short.MaxAge)
	}
	if !second.GetCreateTime().AsTime().Equal(first.GetCreateTime().AsTime()) || !second.GetRetryTime().AsTime().After(first.GetCreateTime().AsTime()) {
		t.Errorf("createTime %v retryTime %v, want the creation kept and the retry after it", second.GetCreateTime().AsTime(), second.GetRetryTime().AsTime())
	}
}

func TestSlowReceiverIsRetriedAfterTheTimeout(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n == 0 {
			select { // past the attempt's timeout
			case <-release:
			case <-time.After(2 * fastWebhooks.Timeout):
			}
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "support.*")
	rc.setSecret(ep.GetSecret())
	s.publish(t, s.tenant, "support.ticket.created", "cust-2")
	eventually(t, 10*time.Second, "a delivered retry", func() bool {
		ds := deliveries(t, s, ep.GetId())
		return len(ds) == 1 && ds[0].GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DELIVERED
	})
	d := deliveries(t, s, ep.GetId())[0]
	if d.GetAttemptCount() < 2 || d.GetAttempts()[0].GetStatusCode() != 0 {
		t.Errorf("attempts %v: want a timed-out first attempt, then a delivered one", d.GetAttempts())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	var first atomic.Int64
	rc := newReceiver(t, func(n int, _ received) (int, http.Header) {
		if n == 0 {
			first.Store(time.Now().UnixMilli())
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.order.placed")
	rc.setSecret(ep.GetSecret())
	s.publish(t, s.tenant, "sales.order.placed", "cust-3")
	eventually(t, 10*time.Second, "the delivery after Retry-After", func() bool { return len(rc.accepted()) == 1 })
	if waited := time.Since(time.UnixMilli(first.Load())); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, want Retry-After's 1s", waited)
	}
}

func TestManyEventsToThreeEndpoints(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	n := servicetest.Size(2000, 10000)
	const customers = 20
	filters := map[string][]string{"sales": {"sales.*"}, "tickets": {"support.ticket.*"}, "all": {"sales.*", "support.*", "product.*"}}
	receivers, endpoints := map[string]*receiver{}, map[string]string{}
	for name, f := range filters {
		rc := newReceiver(t, ok200)
		ep := s.createEndpoint(t, rc.URL, f...)
		rc.setSecret(ep.GetSecret())
		receivers[name], endpoints[name] = rc, ep.GetId()
	}
	types := []string{"sales.order.placed", "support.ticket.created", "product.subscription.activated"}
	want := map[string]map[string]int{"sales": {}, "tickets": {}, "all": {}} // customer → count
	for i := range n {
		typ, customer := types[i%len(types)], fmt.Sprintf("cust-%d", i%customers)
		s.publish(t, s.tenant, typ, customer)
		want["all"][customer]++
		switch typ {
		case "sales.order.placed":
			want["sales"][customer]++
		case "support.ticket.created":
			want["tickets"][customer]++
		}
	}
	for name, rc := range receivers {
		total := 0
		for _, c := range want[name] {
			total += c
		}
		// Distinct webhook-ids: an attempt that timed out after the receiver took it comes again.
		eventually(t, 2*time.Minute, name+"'s deliveries", func() bool {
			ids := map[string]bool{}
			for _, r := range rc.accepted() {
				ids[r.ID] = true
			}
			return len(ids) >= total
		})
		seen := map[string]bool{}
		seqs := map[string]map[int64]bool{}
		for _, r := range rc.accepted() {
			if seen[r.ID] {
				continue // at least once: the receiver dedupes on webhook-id
			}
			seen[r.ID] = true
			if !integrationMatches(filters[name], r.Type) {
				t.Errorf("%s received %s", name, r.Type)
			}
			if seqs[r.Customer] == nil {
				seqs[r.Customer] = map[int64]bool{}
			}
			seqs[r.Customer][r.Sequence] = true
		}
		for customer, count := range want[name] {
			for i := int64(1); i <= int64(count); i++ {
				if !seqs[customer][i] {
					t.Fatalf("%s: %s's sequence misses %d of 1..%d", name, customer, i, count)
				}
			}
			if len(seqs[customer]) != count {
				t.Errorf("%s: %s got %d distinct sequence numbers, want %d", name, customer, len(seqs[customer]), count)
			}
		}
		if bad := rc.unsigned(); len(bad) != 0 {
			t.Errorf("%s: %d requests failed the signature check", name, len(bad))
		}
	}
}

func integrationMatches(filter []string, typ string) bool {
	for _, f := range filter {
		if f == "*" || (len(f) > 1 && f[len(f)-1] == '*' && len(typ) >= len(f)-1 && typ[:len(f)-1] == f[:len(f)-1]) || f == typ {
			return true
		}
	}
	return false
}

func TestConsistentFailurePausesTheEndpoint(t *testing.T) {
	cfg := fastWebhooks
	cfg.PauseAfter = 3
	s := startSystem(t, cfg)
	rc := newReceiver(t, func(int, received) (int, http.Header) { return http.StatusInternalServerError, nil })
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	// Three customers' deliveries fail side by side: the run counts past 3 before one pauses it.
	for i := range 3 {
		s.publish(t, s.tenant, "sales.order.placed", fmt.Sprintf("cust-%d", i))
	}
	c, ctx := s.client()
	eventually(t, 10*time.Second, "the endpoint paused", func() bool {
		r, err := c.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
		return err == nil && !r.GetWebhookEndpoint().GetEnabled() && r.GetWebhookEndpoint().GetDisabledReason() != ""
	})
	r, _ := c.GetWebhookEndpoint(ctx, &integrationv1.GetWebhookEndpointRequest{Id: ep.GetId()})
	if got := r.GetWebhookEndpoint().GetDisabledReason(); !strings.HasPrefix(got, "paused after 3 failed attempts in a row; last: HTTP 500") {
		t.Errorf("disabled reason %q, want the threshold's 3 attempts", got)
	}
}

func TestRotatedSecretSignsWithBothDuringTheOverlap(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	rc := newReceiver(t, ok200)
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	c, ctx := s.client()
	rotated, err := c.RotateWebhookSecret(ctx, &integrationv1.RotateWebhookSecretRequest{Id: ep.GetId(), OverlapSeconds: 60})
	if err != nil || rotated.GetWebhookEndpoint().GetSecret() == ep.GetSecret() {
		t.Fatalf("rotate: %v, %v", rotated, err)
	}
	for _, secret := range []string{ep.GetSecret(), rotated.GetWebhookEndpoint().GetSecret()} {
		rc.setSecret(secret) // a receiver that knows only one of the two still verifies
		test, err := c.TestWebhookEndpoint(ctx, &integrationv1.TestWebhookEndpointRequest{Id: ep.GetId()})
		if err != nil || test.GetAttempt().GetStatusCode() != http.StatusOK {
			t.Fatalf(":test: %v, %v", test, err)
		}
		if bad := rc.unsigned(); len(bad) != 0 {
			t.Fatalf("a ping failed the check with one of the secrets: %v", bad)
		}
	}
}

// endpointChanges are the integration.webhook_endpoint.updated events about endpoint on the
// tenant's integration stream: what the audit log records, read before the recorder has.
func endpointChanges(t *testing.T, s *system, endpoint string) []string {
	t.Helper()
	msgs, err := s.suite.Redis.XRange(context.Background(), s.suite.Deps.Keys.Scope("integration", s.tenant).Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, m := range msgs {
		data, _ := m.Values["e"].(string)
		ev, err := events.Decode([]byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() != "integration.webhook_endpoint.updated" {
			continue
		}
		p := &integrationv1.WebhookEndpointChanged{}
		if err := ev.GetPayload().UnmarshalTo(p); err != nil {
			t.Fatal(err)
		}
		if p.GetEndpointId() == endpoint {
			actors = append(actors, ev.GetActor().GetSweep())
		}
	}
	return actors
}

// Many deliveries answered 410 at once disable the endpoint once: one
// integration.webhook_endpoint.updated, its actor the dispatcher, found in the audit log by the
// endpoint and by that actor.
func TestConcurrentGoneDisablesOnceAsTheDispatcher(t *testing.T) {
	const n = 6
	cfg := fastWebhooks
	cfg.Timeout = 10 * time.Second // the receiver holds every request until all n are in
	s := startSystem(t, cfg)
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	rc := newReceiver(t, func(int, received) (int, http.Header) {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(5 * time.Second): // bounds a broken run; the assertions below say why
		}
		return http.StatusGone, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.order.placed")
	for i := range n {
		s.publish(t, s.tenant, "sales.order.placed", fmt.Sprintf("cust-%d", i))
	}
	eventually(t, 20*time.Second, "every delivery dead", func() bool {
		ds := deliveries(t, s, ep.GetId())
		dead := 0
		for _, d := range ds {
			if d.GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DEAD {
				dead++
			}
		}
		return dead == n
	})
	// Each delivery's disable wrote before its delivery turned DEAD: the stream holds them all.
	if got := endpointChanges(t, s, ep.GetId()); len(got) != 1 || got[0] != integration.DispatcherActor {
		t.Fatalf("endpoint updates by %q, want one by %q", got, integration.DispatcherActor)
	}
	c, ctx := s.client()
	for _, f := range []string{`actor = "sweep:integration.webhooks"`, `resource = "integration.webhook_endpoint/` + ep.GetId() + `"`} {
		var entries []*integrationv1.AuditEntry
		eventually(t, 10*time.Second, "the audit entry for "+f, func() bool {
			resp, err := c.ListAuditEntries(ctx, &integrationv1.ListAuditEntriesRequest{Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			entries = resp.GetAuditEntries()
			for _, e := range entries {
				if e.GetEventType() == "integration.webhook_endpoint.updated" {
					return true
				}
			}
			return false
		})
		for _, e := range entries {
			if e.GetResourceId() != ep.GetId() || !strings.HasPrefix(e.GetEventType(), "integration.webhook_endpoint.") {
				t.Errorf("%s: entry %s %s/%s", f, e.GetEventType(), e.GetResourceType(), e.GetResourceId())
			}
		}
	}
}

// A customer's deliveries to an endpoint arrive in sequence order, one at a time, even when many
// are released at once, while they succeed. One that fails never holds back the ones after it
// (issue 16): it leaves the customer's order and is retried on its own while the later ones go
// on, and the receiver orders by sequence. Another customer's deliveries (and the events without
// a customer, in their own order) go on meanwhile.
func TestDeliveriesArriveInOrderPerCustomer(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	const n, failing = 50, 10
	var mu sync.Mutex
	log := map[string][]int64{} // customer → the sequence numbers of every request, in arrival
	fails, after := 0, map[int64]bool{}
	rc := newReceiver(t, func(_ int, r received) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		log[r.Customer] = append(log[r.Customer], r.Sequence)
		// cust-a's 10th fails until cust-a's later ones all arrived: were they held back behind
		// it, neither would ever finish.
		if r.Customer == "cust-a" && r.Sequence == failing && (fails < 3 || len(after) < n-failing) {
			fails++
			return http.StatusInternalServerError, nil
		}
		if r.Customer == "cust-a" && r.Sequence > failing {
			after[r.Sequence] = true
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	rc.setSecret(ep.GetSecret())
	for range n {
		s.publish(t, s.tenant, "sales.order.placed", "cust-a")
		s.publish(t, s.tenant, "sales.order.placed", "cust-b")
		s.publish(t, s.tenant, "sales.order.placed", "")
	}
	eventually(t, time.Minute, "every delivery", func() bool {
		ids := map[string]bool{}
		for _, r := range rc.accepted() {
			ids[r.ID] = true
		}
		return len(ids) == 3*n
	})
	mu.Lock()
	defer mu.Unlock()
	if fails < 3 {
		t.Errorf("cust-a's delivery %d failed %d times, want at least 3", failing, fails)
	}
	for _, customer := range []string{"cust-a", "cust-b", ""} {
		var got []int64
		seen := map[string]bool{}
		for _, r := range rc.accepted() {
			if r.Customer == customer && !seen[r.ID] { // at least once: a lost answer comes again
				seen[r.ID] = true
				got = append(got, r.Sequence)
			}
		}
		if len(got) != n {
			t.Errorf("%q: %d deliveries accepted, want %d", customer, len(got), n)
		}
		if customer == "cust-a" { // the failed one came last, after the ones it did not hold back
			if len(got) == 0 || got[len(got)-1] != failing {
				t.Fatalf("cust-a: accepted %v, want %d last", got, failing)
			}
			got = got[:len(got)-1]
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%q: accepted out of order: %v", customer, got)
			}
		}
		// Every first request in order: the deliveries were sent one at a time, in sequence.
		var firsts []int64
		for _, seq := range log[customer] {
			if len(firsts) == 0 || seq > firsts[len(firsts)-1] {
				firsts = append(firsts, seq)
			} else if !(customer == "cust-a" && seq == failing) && seq != firsts[len(firsts)-1] {
				t.Fatalf("%q: requests out of order: %v", customer, log[customer])
			}
		}
	}
}

// An attempt that gets no answer is shown as a stable text naming at most the receiver's host:
// never the Go error with the platform's resolver or addresses.
func TestAttemptErrorsAreSafeTexts(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsServer.Close)
	c, ctx := s.client()
	for url, want := range map[string]string{
		"http://ok.invalid/hook": "DNS lookup failed for ok.invalid",
		closed.URL + "/hook":     "connection refused",
		tlsServer.URL + "/hook":  "TLS certificate not valid for 127.0.0.1",
	} {
		ep := s.createEndpoint(t, url)
		r, err := c.TestWebhookEndpoint(ctx, &integrationv1.TestWebhookEndpointRequest{Id: ep.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		got := r.GetAttempt().GetResponseSnippet()
		if got == "DNS lookup timed out for ok.invalid" { // a slow resolver: as safe
			got = "DNS lookup failed for ok.invalid"
		}
		if got != want || r.GetAttempt().GetStatusCode() != 0 {
			t.Errorf("%s: %d %q, want %q", url, r.GetAttempt().GetStatusCode(), got, want)
		}
	}
}

// TestDeliveriesFilteredByStateFillTheirPages: a list of the deliveries in one state reads on
// through the endpoint's log, so a rare state answers full pages, not empty ones with a token;
// paged through, it is exactly the unfiltered list's deliveries in that state, in its order.
func TestDeliveriesFilteredByStateFillTheirPages(t *testing.T) {
	cfg := fastWebhooks
	cfg.MaxAge = time.Millisecond // a failed attempt is the last: the delivery is DEAD
	s := startSystem(t, cfg)
	rc := newReceiver(t, func(_ int, r received) (int, http.Header) {
		if strings.HasSuffix(r.Customer, "0") || strings.HasSuffix(r.Customer, "5") {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	rc.setSecret(ep.GetSecret())
	const events = 40
	for i := range events {
		s.publish(t, s.tenant, "sales.order.placed", fmt.Sprintf("cust-%d", i))
	}
	var all []*integrationv1.Delivery
	eventually(t, 20*time.Second, "every delivery delivered or dead", func() bool {
		all = deliveries(t, s, ep.GetId())
		for _, d := range all {
			if d.GetState() == integrationv1.DeliveryState_DELIVERY_STATE_PENDING {
				return false
			}
		}
		return len(all) == events
	})
	var want []string
	for _, d := range all {
		if d.GetState() == integrationv1.DeliveryState_DELIVERY_STATE_DEAD {
			want = append(want, d.GetId())
		}
	}
	if len(want) != events/5 {
		t.Fatalf("%d dead deliveries, want %d", len(want), events/5)
	}

	c, ctx := s.client()
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		r, err := c.ListDeliveries(ctx, &integrationv1.ListDeliveriesRequest{EndpointId: ep.GetId(),
			Filter: "state = DELIVERY_STATE_DEAD", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range r.GetDeliveries() {
			got = append(got, d.GetId())
		}
		if token = r.GetNextPageToken(); token == "" {
			break
		}
		if len(r.GetDeliveries()) != 3 {
			t.Fatalf("page %d holds %d deliveries with a next page token, want a full page of 3", pages, len(r.GetDeliveries()))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead deliveries paged by 3:\n got %v\nwant %v", got, want)
	}
}

// TestEndpointGetsOnlyEventsAfterItsCreation: an event that occurred before the endpoint existed
// (a backlog the recorder reads late) is not delivered to it; one after is.
func TestEndpointGetsOnlyEventsAfterItsCreation(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	rc := newReceiver(t, ok200)
	ep := s.createEndpoint(t, rc.URL, "sales.*")
	rc.setSecret(ep.GetSecret())
	order := func(customer string) eventv1.Body {
		return salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: &salesv1.Order{Id: "order-1", CustomerId: customer}})
	}
	before := s.publishBodyAt(t, s.tenant, order("cust-before"), "cust-before", ep.GetCreateTime().AsTime().Add(-time.Second))
	after := s.publishBodyAt(t, s.tenant, order("cust-after"), "cust-after", ep.GetCreateTime().AsTime().Add(time.Millisecond))
	// The recorder reads the stream in order: once the later event's delivery is logged, the
	// earlier one was handled.
	var logged []*integrationv1.Delivery
	eventually(t, 10*time.Second, "the later event's delivery", func() bool {
		logged = deliveries(t, s, ep.GetId())
		return slices.ContainsFunc(logged, func(d *integrationv1.Delivery) bool { return d.GetEventId() == after.GetId() })
	})
	for _, d := range logged {
		if d.GetEventId() == before.GetId() {
			t.Fatalf("an event from before the endpoint's creation was delivered to it: %v", d)
		}
	}
}
