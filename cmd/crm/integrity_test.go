package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// customerWrite is one write about a customer, in any service, over REST and over gRPC.
type customerWrite struct {
	name, method, path, body string // %s in path and body: the customer id
	grpc                     func(ctx context.Context, s *system, customer string) error
}

// customerWrites are every write that names a customer (the request messages with a customer id):
// marketing's loyalty, referral and lifecycle writes, sales' orders, support's tickets and NPS.
// Product has none: its subscriptions and entitlements come from sales' orders.
func customerWrites(product string) []customerWrite {
	mk := func(ctx context.Context, s *system) marketingv1.MarketingServiceClient {
		return marketingv1.NewMarketingServiceClient(s.grpc)
	}
	sp := func(s *system) supportv1.SupportServiceClient { return supportv1.NewSupportServiceClient(s.grpc) }
	return []customerWrite{
		{"loyalty credit", http.MethodPost, "/v1/customers/%s/loyalty:credit", `{"points":"10","reason":"goodwill"}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).CreditPoints(ctx, &marketingv1.CreditPointsRequest{CustomerId: id, Points: 10, Reason: "goodwill"})
				return err
			}},
		{"loyalty redeem", http.MethodPost, "/v1/customers/%s/loyalty:redeem", `{"points":"1","reward":"mug"}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).RedeemPoints(ctx, &marketingv1.RedeemPointsRequest{CustomerId: id, Points: 1, Reward: "mug"})
				return err
			}},
		{"referral code", http.MethodPost, "/v1/customers/%s/referralCodes", `{}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).CreateReferralCode(ctx, &marketingv1.CreateReferralCodeRequest{CustomerId: id})
				return err
			}},
		{"lifecycle move", http.MethodPost, "/v1/customers/%s/lifecycle:move", `{"stage":"LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER","cause":"test"}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).MoveLifecycleStage(ctx, &marketingv1.MoveLifecycleStageRequest{CustomerId: id,
					Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, Cause: "test"})
				return err
			}},
		{"set at risk", http.MethodPost, "/v1/customers/%s/lifecycle:setAtRisk", `{"reason":"test"}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).SetCustomerAtRisk(ctx, &marketingv1.SetCustomerAtRiskRequest{CustomerId: id, Reason: "test"})
				return err
			}},
		{"clear at risk", http.MethodPost, "/v1/customers/%s/lifecycle:clearAtRisk", `{}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := mk(ctx, s).ClearCustomerAtRisk(ctx, &marketingv1.ClearCustomerAtRiskRequest{CustomerId: id})
				return err
			}},
		{"order", http.MethodPost, "/v1/orders", `{"customerId":"%s","lines":[{"productId":"` + product + `","quantity":1}]}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := salesv1.NewSalesServiceClient(s.grpc).CreateOrder(ctx, &salesv1.CreateOrderRequest{Order: &salesv1.Order{
					CustomerId: id, Lines: []*salesv1.OrderLine{{ProductId: product, Quantity: 1}}}})
				return err
			}},
		{"ticket", http.MethodPost, "/v1/tickets", `{"customerId":"%s","subject":"It broke"}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := sp(s).CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: id, Subject: "It broke"}})
				return err
			}},
		{"nps", http.MethodPost, "/v1/npsResponses", `{"customerId":"%s","score":9}`,
			func(ctx context.Context, s *system, id string) error {
				_, err := sp(s).RecordNpsResponse(ctx, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{CustomerId: id, Score: 9}})
				return err
			}},
	}
}

// settled waits until every consumer group of every service has handled every event, so a
// snapshot taken then is not moved by the reactions to earlier writes.
func settled(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event bus settled", func() int64 {
		var behind int64
		for _, producer := range serviceTargets {
			lags, err := events.Lag(context.Background(), rdb, keys, producer)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lags {
				behind += max(l.Lag, 0) + l.Pending
			}
		}
		return behind
	}, func(n int64) bool { return n == 0 })
}

func withID(s, id string) string { return strings.ReplaceAll(s, "%s", id) }

// TestEveryWriteAboutACustomerChecksTheRegistry runs every service on a Redis of the test's own:
// every write about a customer nobody has (or another tenant has) is 404 over REST and NOT_FOUND
// over gRPC, and no key of the whole Redis changes; right after a capture or a contact create the
// same writes pass; the 360 and the value of an unknown customer are 404, and a customer marketing
// knows without orders is worth zero, POTENTIAL.
func TestEveryWriteAboutACustomerChecksTheRegistry(t *testing.T) {
	store := redistest.NewServer(t)
	sys := startSystem(t, func(c *processConfig) { c.Redis.URL = store.URL })
	sys.rdb = redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(store.URL, "redis://")})
	t.Cleanup(func() { _ = sys.rdb.Close() })
	_, key := sys.newKey(t, "", "admin")
	_, stranger := sys.newKey(t, "", "admin")
	product := str(sys.createProduct(t, key, productBody("INTEGRITY", "Suite", "BILLING_PERIOD_MONTHLY")), "id")
	foreign := str(sys.captureLead(t, stranger, `{"email":"foreign@example.com"}`), "customerId")
	writes := customerWrites(product)
	ctx := servicetest.WithKey(context.Background(), key)

	for _, w := range writes {
		for _, customer := range []string{uuid.NewString(), foreign} {
			settled(t, sys.rdb)
			before := redistest.Take(t, sys.rdb, redistest.BusKeys...)
			r := sys.do(t, w.method, withID(w.path, customer), key, []byte(withID(w.body, customer)))
			if r.status != http.StatusNotFound || !strings.Contains(string(r.body), "CUSTOMER_NOT_FOUND") {
				t.Errorf("%s of %s over REST: %d %s, want 404 CUSTOMER_NOT_FOUND", w.name, customer, r.status, r.body)
			}
			if err := w.grpc(ctx, sys, customer); status.Code(err) != codes.NotFound {
				t.Errorf("%s of %s over gRPC: %v, want NOT_FOUND", w.name, customer, err)
			}
			settled(t, sys.rdb)
			if changed := before.Changed(redistest.Take(t, sys.rdb, redistest.BusKeys...)); len(changed) > 0 {
				t.Errorf("%s of an unknown customer changed %d keys: %v", w.name, len(changed), changed)
			}
		}
	}
	unknown := uuid.NewString()
	sys.fails(t, http.MethodGet, "/v1/customers/"+unknown, key, "", http.StatusNotFound, "NOT_FOUND")
	sys.fails(t, http.MethodGet, "/v1/customers/"+unknown+"/value", key, "", http.StatusNotFound, "NOT_FOUND")

	// Read after write: right after the capture (marketing) or the contact (sales), every
	// service takes writes about the person.
	for i := range 5 {
		lead := sys.captureLead(t, key, fmt.Sprintf(`{"email":"fresh%d@example.com"}`, i))
		customer := str(lead, "customerId")
		value := sys.ok(t, http.MethodGet, "/v1/customers/"+customer+"/value", key, "")
		if str(value, "customerType") != "CUSTOMER_TYPE_POTENTIAL" || value["orderCount"] != nil {
			t.Errorf("value of a captured person without orders = %v, want zero and POTENTIAL", value)
		}
		for _, w := range writes {
			if w.name == "order" {
				continue // an order needs a contact: below
			}
			if err := w.grpc(ctx, sys, customer); err != nil {
				t.Errorf("%s right after the capture: %v", w.name, err)
			}
		}
		contact := sys.ok(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"contact%d@example.com"}`, i))
		for _, w := range writes {
			if err := w.grpc(ctx, sys, str(contact, "customerId")); err != nil {
				t.Errorf("%s right after the contact: %v", w.name, err)
			}
		}
	}
}

// registryCalls counts the checks support sent to marketing's registry: their client spans,
// which end before support answers (a server span can end after the caller has its answer).
func registryCalls(sys *system) int {
	n := 0
	for _, s := range sys.spans.Ended() {
		if s.Name() == "crm.marketing.v1.MarketingService/GetCustomerIdentity" && s.SpanKind().String() == "client" {
			n++
		}
	}
	return n
}

// TestTheCustomerCheckForgetsErasedAndMergedCustomers: support remembers that a customer exists
// (a second ticket asks marketing nothing), and forgets it when marketing announces the customer
// erased or merged: the next write is refused (404, or CUSTOMER_MERGED naming the survivor).
func TestTheCustomerCheckForgetsErasedAndMergedCustomers(t *testing.T) {
	customerCheckForgets(t, startSystem(t))
}

// TestTheCustomerCheckForgetsOnACluster: the same on a real 3-master Redis Cluster, where the
// announcements are published from inside a write's script on one node and reach the
// subscriptions on any.
func TestTheCustomerCheckForgetsOnACluster(t *testing.T) {
	customerCheckForgets(t, startSystem(t, onCluster(t)))
}

func customerCheckForgets(t *testing.T, sys *system) {
	_, key := sys.newKey(t, "", "admin")
	ticket := func(customer string) response {
		return sys.do(t, http.MethodPost, "/v1/tickets", key, []byte(`{"customerId":"`+customer+`","subject":"Help"}`))
	}

	// The checker keeps answers only once it follows marketing's announcements: its subscription
	// starts beside the servers, and an answer that arrives as it starts may predate an erase it
	// missed, so it is not kept. Wait for that on a customer of its own before counting.
	warm := str(sys.captureLead(t, key, `{"email":"warm@example.com"}`), "customerId")
	waitFor(t, "a ticket that asks marketing nothing (the checker remembering)", func() int {
		before := registryCalls(sys)
		if r := ticket(warm); r.status != http.StatusOK {
			t.Fatalf("ticket while the checker starts: %d %s", r.status, r.body)
		}
		return registryCalls(sys) - before
	}, func(checks int) bool { return checks == 0 })

	lead := sys.captureLead(t, key, `{"email":"erased@example.com"}`)
	erased := str(lead, "customerId")
	before := registryCalls(sys)
	if r := ticket(erased); r.status != http.StatusOK {
		t.Fatalf("first ticket: %d %s", r.status, r.body)
	}
	calls := registryCalls(sys)
	if calls == before {
		t.Fatal("the first ticket asked marketing nothing: no client span of the registry check")
	}
	if r := ticket(erased); r.status != http.StatusOK {
		t.Fatalf("second ticket: %d %s", r.status, r.body)
	}
	if got := registryCalls(sys); got != calls {
		t.Errorf("the second ticket asked marketing again (%d checks, want %d): the positive answer is not remembered", got, calls)
	}
	sys.ok(t, http.MethodDelete, "/v1/leads/"+str(lead, "id"), key, "")
	waitFor(t, "a ticket of the erased customer refused", func() int { return ticket(erased).status },
		func(code int) bool { return code == http.StatusNotFound })

	survivor := str(sys.captureLead(t, key, `{"email":"survivor@example.com"}`), "customerId")
	merged := str(sys.captureLead(t, key, `{"email":"merged@example.com"}`), "customerId")
	if r := ticket(merged); r.status != http.StatusOK {
		t.Fatalf("ticket before the merge: %d %s", r.status, r.body)
	}
	sys.ok(t, http.MethodPost, "/v1/customers/"+survivor+":merge", key, `{"mergedCustomerId":"`+merged+`"}`)
	r := waitFor(t, "a ticket of the merged customer refused", func() response { return ticket(merged) },
		func(r response) bool { return r.status != http.StatusOK })
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "CUSTOMER_MERGED") || !strings.Contains(string(r.body), survivor) {
		t.Errorf("ticket of the merged customer: %d %s, want 400 CUSTOMER_MERGED naming %s", r.status, r.body, survivor)
	}
}

// TestEveryReplicaForgetsErasedAndMergedCustomers runs two processes of the whole suite on one
// Redis, as two replicas: both remember that customers exist (each took a ticket about them, and
// answered the customer 360 of one), and when one replica erases or merges a customer, the other
// refuses the next ticket (support's check) and 360 (sales' check) within a second, although a
// consumer group gives the event to one of them only: marketing announces the change on a pub/sub
// channel every process follows.
func TestEveryReplicaForgetsErasedAndMergedCustomers(t *testing.T) {
	one, other := startSystem(t), startSystem(t)
	_, key := one.newKey(t, "", "admin")
	ticket := func(sys *system, customer string) response {
		return sys.do(t, http.MethodPost, "/v1/tickets", key, []byte(`{"customerId":"`+customer+`","subject":"Help"}`))
	}
	c360 := func(sys *system, customer string) response {
		return sys.do(t, http.MethodGet, "/v1/customers/"+customer, key, nil)
	}
	lead := one.captureLead(t, key, `{"email":"replicas.erased@example.com"}`)
	erased := str(lead, "customerId")
	survivor := str(one.captureLead(t, key, `{"email":"replicas.survivor@example.com"}`), "customerId")
	merged := str(one.captureLead(t, key, `{"email":"replicas.merged@example.com"}`), "customerId")
	for _, sys := range []*system{one, other} {
		for _, r := range []response{ticket(sys, erased), ticket(sys, merged), c360(sys, erased)} {
			if r.status != http.StatusOK {
				t.Fatalf("before the erase and merge: %d %s", r.status, r.body)
			}
		}
	}
	// refusedWithinASecond polls the other replica's answer until it has status and names want,
	// for at most a second after the change answered.
	refusedWithinASecond := func(what string, call func() response, status int, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			r := call()
			if r.status == status && strings.Contains(string(r.body), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other replica still answers %d %s a second later, want %d naming %s", what, r.status, r.body, status, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	one.ok(t, http.MethodDelete, "/v1/leads/"+str(lead, "id"), key, "")
	refusedWithinASecond("a ticket after the erase", func() response { return ticket(other, erased) }, http.StatusNotFound, "CUSTOMER_NOT_FOUND")
	refusedWithinASecond("the 360 after the erase", func() response { return c360(other, erased) }, http.StatusNotFound, "NOT_FOUND")
	one.ok(t, http.MethodPost, "/v1/customers/"+survivor+":merge", key, `{"mergedCustomerId":"`+merged+`"}`)
	refusedWithinASecond("a ticket after the merge", func() response { return ticket(other, merged) }, http.StatusBadRequest, survivor)
}

// TestWritesAboutACustomerWithMarketingDown: with marketing unreachable, an order cannot check
// its customer: 503 with Retry-After, never 500, and nothing written.
func TestWritesAboutACustomerWithMarketingDown(t *testing.T) {
	sys := startSystem(t, func(c *processConfig) {
		dead := "127.0.0.1:1"
		c.ServiceAddrs["marketing"] = &dead
	})
	_, key := sys.newKey(t, "", "admin")
	product := str(sys.createProduct(t, key, productBody("DOWN-MKT", "Suite", "BILLING_PERIOD_MONTHLY")), "id")
	for _, w := range customerWrites(product) {
		if w.method != http.MethodPost || strings.HasPrefix(w.path, "/v1/customers/") {
			continue // marketing's own writes go to marketing itself
		}
		r := sys.do(t, w.method, w.path, key, []byte(withID(w.body, uuid.NewString())))
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s with marketing down: %d (Retry-After %q) %s, want 503 with Retry-After", w.name, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
}
