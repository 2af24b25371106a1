package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// mergeWorld is two records of one person: each with a lead, a contact, orders, a ticket, an NPS
// answer and loyalty points; the survivor with a monthly subscription, the duplicate with two one-time
// orders, a referral code and a withdrawn e-mail consent.
type mergeWorld struct {
	survivor, merged, code string
}

func (s *system) buildMergeWorld(t *testing.T, key, tag string) mergeWorld {
	t.Helper()
	monthly := str(s.createProduct(t, key, productBody("MRG-M-"+tag, "Suite", "BILLING_PERIOD_MONTHLY")), "id")
	once := str(s.createProduct(t, key, productBody("MRG-O-"+tag, "Setup", "BILLING_PERIOD_ONE_TIME")), "id")
	var w mergeWorld
	w.survivor = str(s.captureLead(t, key, `{"email":"pat@home.example","consent":[{"channel":"CHANNEL_EMAIL","granted":true},{"channel":"CHANNEL_SOCIAL","granted":true}]}`), "customerId")
	w.merged = str(s.captureLead(t, key, `{"email":"pat@work.example","consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`), "customerId")
	// The duplicate withdraws e-mail consent: the merge must never undo it.
	s.captureLead(t, key, `{"email":"pat@work.example","consent":[{"channel":"CHANNEL_EMAIL","granted":false}]}`)
	for _, email := range []string{"pat@home.example", "pat@work.example"} {
		s.ok(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":%q,"givenName":"Pat"}`, email))
	}
	order := func(customer, product string) {
		s.ok(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, customer, product))
	}
	order(w.survivor, monthly)
	order(w.merged, once)
	order(w.merged, once)
	for _, c := range []string{w.survivor, w.merged} {
		s.ok(t, http.MethodPost, "/v1/tickets", key, fmt.Sprintf(`{"customerId":%q,"subject":"Help","priority":"TICKET_PRIORITY_LOW"}`, c))
		// A passive NPS answer each (a promoter would make an ADVOCATE, a detractor a risk).
		s.ok(t, http.MethodPost, "/v1/npsResponses", key, fmt.Sprintf(`{"customerId":%q,"score":8}`, c))
	}
	s.ok(t, http.MethodPost, "/v1/customers/"+w.survivor+"/loyalty:credit", key, `{"points":"100","reason":"welcome"}`)
	s.ok(t, http.MethodPost, "/v1/customers/"+w.merged+"/loyalty:credit", key, `{"points":"250","reason":"welcome"}`)
	w.code = str(s.ok(t, http.MethodPost, "/v1/customers/"+w.merged+"/referralCodes", key, `{}`), "code")
	// Usage: the survivor's user ada uses the pipeline on the subscription; ada and bob use reports
	// on the duplicate's setup entitlements.
	use := func(customer string, grants int, uses ...string) {
		subs := waitFor(t, "the subscriptions and entitlements of the orders", func() []map[string]any { return s.grantsOf(t, key, customer) },
			func(subs []map[string]any) bool { return len(subs) == grants })
		for i, u := range uses {
			feature, user, _ := strings.Cut(u, "/")
			s.ok(t, http.MethodPost, "/v1/subscriptions/"+str(subs[i%len(subs)], "id")+"/usageRecords", key,
				fmt.Sprintf(`{"feature":%q,"quantity":"2","userId":%q}`, feature, user))
		}
	}
	use(w.survivor, 1, "pipeline/ada")
	use(w.merged, 2, "reports/ada", "reports/bob")
	// The reactions settle: the survivor a CLIENT, the duplicate a REPEAT_CUSTOMER.
	waitFor(t, "the stages before the merge", func() string {
		return s.stageOf(t, key, w.survivor) + " " + s.stageOf(t, key, w.merged)
	}, func(v string) bool { return v == "LIFECYCLE_STAGE_CLIENT LIFECYCLE_STAGE_REPEAT_CUSTOMER" })
	return w
}

func (s *system) stageOf(t *testing.T, key, customer string) string {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/customers/"+customer+"/lifecycle", key, nil)
	if r.status != http.StatusOK {
		return strconv.Itoa(r.status)
	}
	return str(r.json(t), "stage")
}

// mergeReads is every read a merge changes, for one customer.
type mergeReads struct {
	orders, tickets, subscriptions, nps []string
	balance                             int64
	stage                               string
	history                             []string
	value                               string
	adoption                            string
}

// adoptionOf is the customer's adoption as served, "" when it has none (404).
func (s *system) adoptionOf(t *testing.T, key, customer string) string {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/customers/"+customer+"/adoption", key, nil)
	if r.status == http.StatusNotFound {
		return ""
	}
	if r.status != http.StatusOK {
		t.Fatalf("adoption of %s: %d %s", customer, r.status, r.body)
	}
	a := r.json(t)
	return fmt.Sprintf("score %v %v, %v users of %v seats, %v of %v features", a["score"], a["band"], a["activeUsers"], a["seats"],
		a["featuresUsed"], a["featuresAvailable"])
}

func (s *system) readsOf(t *testing.T, key, customer string) mergeReads {
	t.Helper()
	var r mergeReads
	ids := func(path, field string) []string {
		var out []string
		list, _ := s.ok(t, http.MethodGet, path, key, "")[field].([]any)
		for _, x := range list {
			out = append(out, str(x.(map[string]any), "id"))
		}
		slices.Sort(out)
		return out
	}
	filter := url.QueryEscape(fmt.Sprintf("customer_id = %q", customer))
	r.orders = ids("/v1/orders?pageSize=100&filter="+filter, "orders")
	r.tickets = ids("/v1/tickets?pageSize=100&filter="+filter, "tickets")
	r.nps = ids("/v1/npsResponses?pageSize=100&filter="+filter, "npsResponses")
	for _, sub := range s.grantsOf(t, key, customer) {
		r.subscriptions = append(r.subscriptions, str(sub, "id"))
	}
	slices.Sort(r.subscriptions)
	if l := s.do(t, http.MethodGet, "/v1/customers/"+customer+"/loyalty", key, nil); l.status == http.StatusOK {
		r.balance, _ = strconv.ParseInt(str(l.json(t), "pointsBalance"), 10, 64)
	}
	if l := s.do(t, http.MethodGet, "/v1/customers/"+customer+"/lifecycle", key, nil); l.status == http.StatusOK {
		lc := l.json(t)
		r.stage = str(lc, "stage")
		history, _ := lc["history"].([]any)
		for _, m := range history {
			mv := m.(map[string]any)
			r.history = append(r.history, str(mv, "time")+" "+str(mv, "from")+">"+str(mv, "to"))
		}
	}
	if v := s.do(t, http.MethodGet, "/v1/customers/"+customer+"/value", key, nil); v.status == http.StatusOK {
		r.value = fmt.Sprint(v.json(t)["orderCount"])
	}
	r.adoption = s.adoptionOf(t, key, customer)
	return r
}

// TestMergeCustomersEverywhere merges two records of one person and checks every read against
// what the two records held before: orders, tickets, NPS answers and subscriptions are the union, loyalty
// balances add up, the lifecycle history is both histories, the stage is recomputed from the
// combined facts, the value counts every order, the merged id answers with mergedInto (its
// lifecycle, loyalty, value and adoption with the survivor's), a consent
// withdrawn on the duplicate stays withdrawn, the referral code names the survivor. Repeating the
// merge changes nothing; another tenant cannot merge.
func TestMergeCustomersEverywhere(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", allScopes...)
	_, stranger := sys.newKey(t, "", allScopes...)
	w := sys.buildMergeWorld(t, key, "E")
	a, b := sys.readsOf(t, key, w.survivor), sys.readsOf(t, key, w.merged)
	if len(a.orders) != 1 || len(b.orders) != 2 || len(a.tickets) != 1 || len(b.tickets) != 1 || len(a.subscriptions) != 1 || len(a.nps) != 1 || len(b.nps) != 1 {
		t.Fatalf("before the merge: survivor %+v, duplicate %+v", a, b)
	}
	// The loyalty balances include the points the orders earned, whatever they are.
	want := mergeReads{
		orders: sorted(a.orders, b.orders), tickets: sorted(a.tickets, b.tickets), subscriptions: sorted(a.subscriptions, b.subscriptions),
		nps: sorted(a.nps, b.nps), balance: a.balance + b.balance,
		// Three orders and an active monthly subscription: a CLIENT (the duplicate's REPEAT_CUSTOMER
		// is not simply kept, nor the furthest stage taken).
		stage: "LIFECYCLE_STAGE_CLIENT", value: "3",
		// Adoption from the combined usage (recency 40 + features used 30 * 2/2 + users per seat
		// 30 * min(2, 1)/1): the monthly subscription's one seat, ada and bob this month, reports
		// and pipeline both used of the two the products give, all used just now. Neither record
		// had it alone (the survivor 85: one user, one feature; the duplicate 55: no seats).
		adoption: "score 100 ADOPTION_BAND_HEALTHY, 2 users of 1 seats, 2 of 2 features",
	}
	if a.adoption != "score 85 ADOPTION_BAND_HEALTHY, 1 users of 1 seats, 1 of 2 features" ||
		b.adoption != "score 55 ADOPTION_BAND_NEEDS_ATTENTION, 2 users of <nil> seats, 1 of 2 features" {
		t.Fatalf("adoption before the merge: survivor %q, duplicate %q", a.adoption, b.adoption)
	}
	wantHistory := sorted(a.history, b.history)

	path := "/v1/customers/" + w.survivor + ":merge"
	body := `{"mergedCustomerId":"` + w.merged + `"}`
	sys.fails(t, http.MethodPost, path, stranger, body, http.StatusNotFound, "NOT_FOUND")
	sys.ok(t, http.MethodPost, path, key, body)

	got := waitFor(t, "the survivor's reads after the merge", func() mergeReads { return sys.readsOf(t, key, w.survivor) },
		func(r mergeReads) bool {
			return fmt.Sprint(r.orders, r.tickets, r.subscriptions, r.nps, r.balance, r.stage, r.value, r.adoption) ==
				fmt.Sprint(want.orders, want.tickets, want.subscriptions, want.nps, want.balance, want.stage, want.value, want.adoption)
		})
	if !isSubsequence(wantHistory, sorted(got.history)) {
		t.Errorf("survivor's history %v does not hold both histories %v", got.history, wantHistory)
	}
	// The duplicate's lists are empty; its lifecycle, loyalty, value and adoption are the
	// survivor's, each naming the survivor, over REST and gRPC.
	gone := waitFor(t, "the duplicate's reads after the merge", func() mergeReads { return sys.readsOf(t, key, w.merged) },
		func(r mergeReads) bool {
			return len(r.orders)+len(r.tickets)+len(r.subscriptions)+len(r.nps) == 0 && r.stage == got.stage
		})
	if gone.balance != got.balance || gone.value != got.value || gone.adoption != got.adoption {
		t.Errorf("the duplicate's reads %+v, want the survivor's %+v", gone, got)
	}
	for _, read := range []string{"lifecycle", "loyalty", "value", "adoption"} {
		if r := sys.ok(t, http.MethodGet, "/v1/customers/"+w.merged+"/"+read, key, ""); str(r, "customerId") != w.survivor {
			t.Errorf("%s of the merged id names %q, want the survivor %s", read, str(r, "customerId"), w.survivor)
		}
	}
	if recs := sys.do(t, http.MethodGet, "/v1/customers/"+w.merged+"/recommendations", key, nil); recs.status != http.StatusOK {
		t.Errorf("recommendations of the merged id: %d %s", recs.status, recs.body)
	}
	mkt, mktCtx := sys.marketing(key)
	if lc, err := mkt.GetCustomerLifecycle(mktCtx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: w.merged}); err != nil || lc.GetLifecycle().GetCustomerId() != w.survivor {
		t.Errorf("gRPC lifecycle of the merged id: %v %v", lc, err)
	}

	// The merged id answers with mergedInto: the registry, and the 360 over REST and gRPC.
	if id := sys.ok(t, http.MethodGet, "/v1/customers/"+w.merged+"/identity", key, ""); str(id, "mergedInto") != w.survivor {
		t.Errorf("identity of the merged id = %v", id)
	}
	c360 := sys.ok(t, http.MethodGet, "/v1/customers/"+w.merged, key, "")
	if orders, _ := obj(c360, "deals")["recentOrders"].([]any); str(c360, "mergedInto") != w.survivor || len(orders) != 3 {
		t.Errorf("360 of the merged id = %v", c360)
	}
	client, ctx := sys.sales(key)
	if resp, err := client.GetCustomer(ctx, &salesv1.GetCustomerRequest{CustomerId: w.merged}); err != nil || resp.GetCustomer().GetMergedInto() != w.survivor {
		t.Errorf("gRPC 360 of the merged id: %v %v", resp, err)
	}

	// Lookups by either e-mail reach the survivor: the registry and sales' contacts.
	for _, email := range []string{"pat@home.example", "PAT@work.example"} {
		if r := sys.ok(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"`+email+`"}`); str(obj(r, "customer"), "customerId") != w.survivor {
			t.Errorf("resolve %s = %v", email, r)
		}
		contacts, _ := sys.ok(t, http.MethodGet, "/v1/contacts?filter="+url.QueryEscape(fmt.Sprintf("email = %q", email)), key, "")["contacts"].([]any)
		if len(contacts) != 1 || str(contacts[0].(map[string]any), "customerId") != w.survivor {
			t.Errorf("contact by %s = %v", email, contacts)
		}
	}

	// Consent: per channel the most restrictive wins on both leads (e-mail withdrawn on the
	// duplicate stays withdrawn; social, granted by the survivor only, stays granted).
	mk, mctx := sys.marketing(key)
	leads, err := mk.ListLeads(mctx, &marketingv1.ListLeadsRequest{PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leads.GetLeads() {
		consent := map[string]bool{}
		for _, c := range l.GetConsent() {
			consent[c.GetChannel().String()] = c.GetGranted()
		}
		if l.GetCustomerId() != w.survivor || consent["CHANNEL_EMAIL"] || !consent["CHANNEL_SOCIAL"] {
			t.Errorf("lead %s after the merge: customer %s, consent %v", l.GetEmail(), l.GetCustomerId(), consent)
		}
	}
	// The referral code now names the survivor.
	referred := sys.captureLead(t, key, `{"email":"friend@example.com","referralCode":"`+w.code+`"}`)
	if str(referred, "referrerCustomerId") != w.survivor {
		t.Errorf("lead referred by the duplicate's code = %v, want referrer %s", referred, w.survivor)
	}

	// The merge again changes nothing.
	sys.ok(t, http.MethodPost, path, key, body)
	if again := sys.readsOf(t, key, w.survivor); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("reads after a repeated merge = %+v, want %+v", again, got)
	}
}

func sorted(lists ...[]string) []string {
	out := slices.Concat(lists...)
	slices.Sort(out)
	return out
}

// isSubsequence reports whether every element of sub is in all, in order.
func isSubsequence(sub, all []string) bool {
	i := 0
	for _, x := range all {
		if i < len(sub) && sub[i] == x {
			i++
		}
	}
	return i == len(sub)
}
