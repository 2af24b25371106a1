package rpc_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/gateway/gatewaytest"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestResolveCustomer(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)

	// A captured lead is registered: resolving its e-mail, in another case, gives its customer.
	lead := sys.captureLead(t, key, `{"email":"Cy@Example.com","channel":"CHANNEL_WEB"}`)
	got := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"  CY@example.COM "}`)
	if c := got["customer"].(map[string]any); c["customerId"] != lead["customerId"] || c["created"] == true {
		t.Fatalf("resolve a captured e-mail = %v, want customer %v", got, lead["customerId"])
	}

	// Unknown without create: NOT_FOUND, nothing written.
	keysBefore, eventsBefore := sys.footprint(t, tenant)
	if r := sys.Do(t, http.MethodPost, "/v1/customers:resolve", key, []byte(`{"email":"nobody@example.com"}`)); r.Status != http.StatusNotFound {
		t.Fatalf("unknown person: %d %s, want 404", r.Status, r.Body)
	}
	for _, body := range []string{`{}`, `{"email":"not an e-mail","create":true}`, `{"email":"a@example.com","origin":"CUSTOMER_ORIGIN_NOPE"}`} {
		if r := sys.Do(t, http.MethodPost, "/v1/customers:resolve", key, []byte(body)); r.Status != http.StatusBadRequest {
			t.Errorf("resolve %s: %d %s, want 400", body, r.Status, r.Body)
		}
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused resolutions wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}

	// Create registers once; an external id added later points to the same customer; an e-mail
	// and an external id of two customers conflict.
	imported, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "dee@example.com", Create: true, Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT})
	if err != nil || !imported.GetCustomer().GetCreated() {
		t.Fatalf("create: %v %v", imported, err)
	}
	id := imported.GetCustomer().GetCustomerId()
	lc, err := client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: id})
	if err != nil || lc.GetLifecycle().GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
		t.Fatalf("an imported person's lifecycle = %v %v, want SUSPECT", lc, err)
	}
	again, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "DEE@example.com", ExternalId: "erp-7", Create: true})
	if err != nil || again.GetCustomer().GetCustomerId() != id || again.GetCustomer().GetCreated() {
		t.Fatalf("resolve again with an external id: %v %v, want %s", again, err, id)
	}
	byExternal, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{ExternalId: "erp-7"})
	if err != nil || byExternal.GetCustomer().GetCustomerId() != id {
		t.Fatalf("resolve by external id: %v %v", byExternal, err)
	}
	identity, err := client.GetCustomerIdentity(ctx, &marketingv1.GetCustomerIdentityRequest{CustomerId: id})
	if err != nil || fmt.Sprint(identity.GetCustomer().GetEmails(), identity.GetCustomer().GetExternalIds()) != "[dee@example.com] [erp-7]" {
		t.Fatalf("identity = %v %v", identity, err)
	}
	_, err = client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "cy@example.com", ExternalId: "erp-7", Create: true})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("e-mail and external id of two customers: %v, want FAILED_PRECONDITION", err)
	}

	// Another tenant knows nobody of this one.
	if r := sys.Do(t, http.MethodPost, "/v1/customers:resolve", stranger, []byte(`{"email":"cy@example.com"}`)); r.Status != http.StatusNotFound {
		t.Errorf("foreign tenant resolve: %d, want 404", r.Status)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/customers/"+id+"/identity", stranger, nil); r.Status != http.StatusNotFound {
		t.Errorf("foreign tenant identity: %d, want 404", r.Status)
	}

	// An erase removes the person from the registry.
	gone := sys.captureLead(t, key, `{"email":"gone@example.com"}`)
	if r := sys.Do(t, http.MethodDelete, "/v1/leads/"+gone["id"].(string), key, nil); r.Status != http.StatusOK {
		t.Fatalf("erase: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/customers:resolve", key, []byte(`{"email":"gone@example.com"}`)); r.Status != http.StatusNotFound {
		t.Fatalf("resolve an erased person: %d %s, want 404", r.Status, r.Body)
	}
	if erased := sys.events(t, tenant, marketingv1.EventCustomerErased.Name); len(erased) != 1 || erased[0].GetCustomerId() != gone["customerId"] {
		t.Fatalf("erased events = %v, want one for %v", erased, gone["customerId"])
	}

	// A capture of a person the registry knows takes their customer id.
	captured := sys.captureLead(t, key, `{"email":"dee@EXAMPLE.com"}`)
	if captured["customerId"] != id {
		t.Fatalf("capture of a registered person: customer %v, want %s", captured["customerId"], id)
	}
}

func TestResolveCustomersBatch(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)

	known := sys.captureLead(t, key, `{"email":"known@example.com"}`)["customerId"]
	var reqs []*marketingv1.ResolveCustomerRequest
	for i := range 1000 {
		reqs = append(reqs, &marketingv1.ResolveCustomerRequest{Email: fmt.Sprintf("p%d@example.com", i%400), Create: true, Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT})
	}
	reqs[7] = &marketingv1.ResolveCustomerRequest{Email: "KNOWN@example.com", Create: true}
	reqs[8] = &marketingv1.ResolveCustomerRequest{Email: "broken", Create: true}
	res, err := client.ResolveCustomers(ctx, &marketingv1.ResolveCustomersRequest{Requests: reqs})
	if err != nil || len(res.GetCustomers()) != len(reqs) {
		t.Fatalf("batch: %d results, %v", len(res.GetCustomers()), err)
	}
	byEmail, created := map[string]string{}, 0
	for i, r := range res.GetCustomers() {
		switch i {
		case 7:
			if r.GetCustomerId() != known || r.GetCreated() {
				t.Errorf("known person in a batch: %v, want %v", r, known)
			}
			continue
		case 8:
			// The item's refusal is the status the single call answers: code, ErrorInfo, field.
			_, single := client.ResolveCustomer(ctx, reqs[8])
			want := status.Convert(single)
			got := status.FromProto(r.GetError())
			if r.GetCustomerId() != "" || got.Code() != codes.InvalidArgument || !proto.Equal(got.Proto(), want.Proto()) {
				t.Errorf("bad e-mail in a batch: %v, want the single call's status %v", r, want.Proto())
			}
			continue
		}
		email := reqs[i].GetEmail()
		if prev, ok := byEmail[email]; ok && prev != r.GetCustomerId() {
			t.Fatalf("%s resolved to %s and %s", email, prev, r.GetCustomerId())
		}
		byEmail[email] = r.GetCustomerId()
		if r.GetCreated() {
			created++
		}
	}
	// Independent count: every distinct e-mail of the batch except the two replaced items' own.
	distinct := map[string]bool{}
	for i, r := range reqs {
		if i != 7 && i != 8 {
			distinct[r.GetEmail()] = true
		}
	}
	if created != len(distinct) || len(byEmail) != len(distinct) {
		t.Fatalf("created %d customers for %d e-mails (%d distinct)", created, len(byEmail), len(distinct))
	}
	if _, err := client.ResolveCustomers(ctx, &marketingv1.ResolveCustomersRequest{Requests: append(reqs, reqs[0])}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("1,001 requests: %v, want INVALID_ARGUMENT", err)
	}
}

func TestResolveCustomerConcurrently(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				r, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "same@example.com", Create: true, Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_CONTACT})
				if err != nil {
					t.Error(err)
				}
				ids[i] = r.GetCustomer().GetCustomerId()
				return
			}
			r, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "Same@example.com"}})
			if err != nil {
				t.Error(err)
			}
			ids[i] = r.GetLead().GetCustomerId()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent resolutions and captures of one person: %v, want one customer id", ids)
		}
	}
}

func TestMergeCustomersInTheRegistry(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	survivor := sys.captureLead(t, key, `{"email":"ann@example.com"}`)["customerId"].(string)
	client, ctx := sys.marketing(key)
	dup, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "ann.work@example.com", ExternalId: "crm-9", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	merged := dup.GetCustomer().GetCustomerId()
	path := "/v1/customers/" + survivor + ":merge"

	// Another tenant's merge of these customers is NOT_FOUND and writes nothing.
	keysBefore, eventsBefore := sys.footprint(t, tenant)
	if r := sys.Do(t, http.MethodPost, path, stranger, []byte(`{"mergedCustomerId":"`+merged+`"}`)); r.Status != http.StatusNotFound {
		t.Fatalf("foreign merge: %d %s, want 404", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodPost, path, key, []byte(`{"mergedCustomerId":"`+survivor+`"}`)); r.Status != http.StatusBadRequest {
		t.Fatalf("merge into itself: %d %s, want 400", r.Status, r.Body)
	}
	// An unknown customer on either side is 404 naming the side.
	nobody := "0192f3a0-0000-7000-8000-00000000dead"
	for _, tt := range []struct{ path, body, field string }{
		{path, `{"mergedCustomerId":"` + nobody + `"}`, "mergedCustomerId"},
		{"/v1/customers/" + nobody + ":merge", `{"mergedCustomerId":"` + merged + `"}`, "customerId"},
	} {
		if r := sys.Do(t, http.MethodPost, tt.path, key, []byte(tt.body)); r.Status != http.StatusNotFound || !slices.Equal(r.FieldViolations(t), []string{tt.field}) {
			t.Errorf("merge %s %s: %d %s, want 404 naming %s", tt.path, tt.body, r.Status, r.Body, tt.field)
		}
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused merges wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}

	got := sys.OK(t, http.MethodPost, path, key, `{"mergedCustomerId":"`+merged+`"}`)
	if fmt.Sprint(got["emails"], got["externalIds"]) != "[ann@example.com ann.work@example.com] [crm-9]" {
		t.Fatalf("survivor after the merge = %v", got)
	}
	for _, body := range []string{`{"email":"ANN.work@example.com"}`, `{"externalId":"crm-9"}`} {
		if r := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, body); r["customer"].(map[string]any)["customerId"] != survivor {
			t.Fatalf("resolve %s after the merge = %v, want the survivor", body, r)
		}
	}
	if id := sys.OK(t, http.MethodGet, "/v1/customers/"+merged+"/identity", key, ""); id["mergedInto"] != survivor {
		t.Fatalf("the merged customer's identity = %v, want mergedInto %s", id, survivor)
	}
	// marketing's consumer moves the merged customer's records (its lifecycle among them); once
	// done, merging again changes nothing, and the merged customer cannot take merges any more.
	for deadline := time.Now().Add(30 * time.Second); !lifecycleMoved(t, sys.Do(t, http.MethodGet, "/v1/customers/"+merged+"/lifecycle", key, nil), survivor); {
		if time.Now().After(deadline) {
			t.Fatal("the merged customer's lifecycle did not move to the survivor")
		}
		time.Sleep(20 * time.Millisecond)
	}
	keysBefore, eventsBefore = sys.footprint(t, tenant)
	sys.OK(t, http.MethodPost, path, key, `{"mergedCustomerId":"`+merged+`"}`)
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("a repeated merge wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/customers/"+merged+":merge", key, []byte(`{"mergedCustomerId":"`+survivor+`"}`)); r.Status != http.StatusBadRequest && r.Status != http.StatusConflict {
		t.Fatalf("merge into a merged customer: %d %s, want 400", r.Status, r.Body)
	}
	if ev := sys.events(t, tenant, marketingv1.EventCustomerMerged.Name); len(ev) != 1 {
		t.Fatalf("%d merged events, want 1", len(ev))
	}
}

// TestAMergeRestagesFromTheCombinedFacts merges a captured lead's customer (a PROSPECT) and an
// imported one (a SUSPECT) both ways, the README's "cy into dee" first: the survivor's stage is
// the one of the combined facts (captured: a PROSPECT), whichever way, and the funnel counts the
// survivor in it. Two imported people stay a SUSPECT: being merged engages nobody.
func TestAMergeRestagesFromTheCombinedFacts(t *testing.T) {
	sys := startSystem(t)
	const (
		suspect  = "LIFECYCLE_STAGE_SUSPECT"
		prospect = "LIFECYCLE_STAGE_PROSPECT"
	)
	for _, tt := range []struct {
		name                       string
		survivorCaptured, captured bool
	}{
		{"captured into imported", false, true},
		{"imported into captured", true, false},
		{"imported into imported", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
			person := func(captured bool, name string) string {
				email := name + "@example.com"
				if captured {
					return sys.captureLead(t, key, `{"email":"`+email+`","company":"Cy Co"}`)["customerId"].(string)
				}
				return sys.OK(t, http.MethodPost, "/v1/customers:resolve", key,
					`{"email":"`+email+`","create":true,"origin":"CUSTOMER_ORIGIN_IMPORT"}`)["customer"].(map[string]any)["customerId"].(string)
			}
			survivor, merged := person(tt.survivorCaptured, "dee1"), person(tt.captured, "cy1")
			want := suspect
			if tt.survivorCaptured || tt.captured {
				want = prospect // DESIGN §5: a capture makes a PROSPECT
			}
			sys.OK(t, http.MethodPost, "/v1/customers/"+survivor+":merge", key, `{"mergedCustomerId":"`+merged+`"}`)
			for deadline := time.Now().Add(30 * time.Second); !lifecycleMoved(t, sys.Do(t, http.MethodGet, lifecyclePath(merged, ""), key, nil), survivor); {
				if time.Now().After(deadline) {
					t.Fatal("the merged customer's lifecycle did not move to the survivor")
				}
				time.Sleep(20 * time.Millisecond)
			}

			lc := sys.OK(t, http.MethodGet, lifecyclePath(survivor, ""), key, "")
			var causes []string
			for _, m := range lc["history"].([]any) {
				m := m.(map[string]any)
				causes = append(causes, fmt.Sprint(m["from"], "->", m["to"], " ", m["cause"]))
			}
			mergeMove := "LIFECYCLE_STAGE_SUSPECT->LIFECYCLE_STAGE_PROSPECT marketing.customer.merged"
			if lc["stage"] != want || slices.Contains(causes, mergeMove) != (want == prospect && !tt.survivorCaptured) {
				t.Fatalf("survivor's lifecycle: stage %v, history %q; want %s, moved by the merge only if it was a SUSPECT", lc["stage"], causes, want)
			}
			customers := map[string]string{}
			for _, s := range sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel", key, "")["stages"].([]any) {
				s := s.(map[string]any)
				if n, ok := s["customers"]; ok {
					customers[s["stage"].(string)] = n.(string)
				}
				// The counts add up: the merged customer's record left its stage with an exit.
				count := func(field string) int64 { n, _ := strconv.ParseInt(fmt.Sprint(s[field]), 10, 64); return n }
				if count("entered")-count("exited") != count("customers") {
					t.Fatalf("funnel %v: entered %d - exited %d != customers %d", s["stage"], count("entered"), count("exited"), count("customers"))
				}
			}
			if fmt.Sprint(customers) != fmt.Sprint(map[string]string{want: "1"}) {
				t.Fatalf("funnel customers per stage = %v, want the survivor alone, in %s", customers, want)
			}
		})
	}
}

// TestEraseRemovesTheCustomersMarketingRecords erases a captured lead whose customer has points,
// a referral code and a stage at risk: the reads then answer as for a customer the tenant never
// had, their code refers nobody, and no key of the tenant names the customer or holds their id
// (read from Redis itself). The funnel keeps counting them; another customer keeps their points.
func TestEraseRemovesTheCustomersMarketingRecords(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := sys.captureLead(t, key, `{"email":"erin@example.com","company":"Erin Co"}`)
	customer := lead["customerId"].(string)
	sys.OK(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, `{"points":"600","reason":"welcome"}`)
	sys.OK(t, http.MethodPost, lifecyclePath(customer, ":setAtRisk"), key, `{"reason":"nps-detractor"}`)
	code := sys.OK(t, http.MethodPost, "/v1/customers/"+customer+"/referralCodes", key, `{}`)["code"].(string)
	bystander := sys.newCustomer(t, key)
	sys.OK(t, http.MethodPost, loyaltyPath(bystander, ":credit"), key, `{"points":"100","reason":"welcome"}`)

	ctx := context.Background()
	// holding lists the tenant's keys that name the customer or hold their id.
	holding := func() []string {
		var out []string
		iter := sys.Suite.Redis.Scan(ctx, 0, "crm:*:marketing:"+tenant+":*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			var content []string
			switch typ := sys.Suite.Redis.Type(ctx, k).Val(); typ {
			case "string":
				content = []string{sys.Suite.Redis.Get(ctx, k).Val()}
			case "hash":
				for f, v := range sys.Suite.Redis.HGetAll(ctx, k).Val() {
					content = append(content, f, v)
				}
			case "zset":
				content = sys.Suite.Redis.ZRange(ctx, k, 0, -1).Val()
			case "set":
				content = sys.Suite.Redis.SMembers(ctx, k).Val()
			default:
				t.Fatalf("%s: a key of type %s", k, typ)
			}
			if strings.Contains(k, customer) || slices.ContainsFunc(content, func(s string) bool { return strings.Contains(s, customer) }) {
				out = append(out, k)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if held := holding(); len(held) < 5 {
		t.Fatalf("before the erase, keys holding the customer = %q; want the lead, registry, lifecycle, loyalty, codes", held)
	}
	funnel := func() string { return fmt.Sprint(sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel", key, "")["stages"]) }
	funnelBefore := funnel()

	if r := sys.Do(t, http.MethodDelete, "/v1/leads/"+lead["id"].(string), key, nil); r.Status != http.StatusOK {
		t.Fatalf("erase: %d %s", r.Status, r.Body)
	}
	// answer is a read's status and error, without the request's id.
	answer := func(path string) string {
		r := sys.Do(t, http.MethodGet, path, key, nil)
		e, _ := r.JSON(t)["error"].(map[string]any)
		details, _ := e["details"].([]any)
		var reasons []any
		for _, d := range details {
			reasons = append(reasons, d.(map[string]any)["reason"])
		}
		return fmt.Sprint(r.Status, " ", e["status"], " ", e["message"], " ", gatewaytest.ErrorMetadata(details), " ", reasons)
	}
	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b699"
	for _, path := range []func(customer, suffix string) string{lifecyclePath, loyaltyPath} {
		if erased, never := answer(path(customer, "")), answer(path(unknown, "")); !strings.HasPrefix(erased, "404 ") || erased != never {
			t.Errorf("GET %s after the erase: %s; want what a customer never seen gets: %s", path(customer, ""), erased, never)
		}
	}
	if r := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"friend@example.com","referralCode":"`+code+`"}`)); r.Status != http.StatusBadRequest ||
		!slices.Contains(r.FieldViolations(t), "lead.referralCode") {
		t.Errorf("capture with the erased customer's code: %d %s, want 400 naming lead.referralCode", r.Status, r.Body)
	}
	if held := holding(); len(held) > 0 {
		t.Errorf("after the erase, keys holding the customer: %q", held)
	}
	if after := funnel(); after != funnelBefore {
		t.Errorf("funnel after the erase = %s, want what it counted before: %s", after, funnelBefore)
	}
	if acct := sys.OK(t, http.MethodGet, loyaltyPath(bystander, ""), key, ""); acct["pointsBalance"] != "100" {
		t.Errorf("another customer's account after the erase = %v, want 100 points", acct)
	}
}

// TestResolveCustomerAttachesAnEmail: customer_id attaches an e-mail to a known customer (what a
// sales contact's e-mail edit does), so a capture with it is that customer; again changes nothing;
// an e-mail of another customer is 409 CUSTOMER_EMAIL_EXISTS naming them and writes nothing; an
// unknown customer is 404, a bad request 400; a merged customer's e-mail joins the survivor; two
// customers attaching one e-mail at once: one has it, the other is refused.
func TestResolveCustomerAttachesAnEmail(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	resolve := func(body string) map[string]any {
		return sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, body)["customer"].(map[string]any)
	}
	person := resolve(`{"email":"kim@example.com","create":true,"origin":"CUSTOMER_ORIGIN_CONTACT"}`)["customerId"].(string)
	other := resolve(`{"email":"lee@example.com","create":true}`)["customerId"].(string)

	// REST: attach, then a capture of the new e-mail is the same customer.
	if got := resolve(`{"email":" Kim.New@Example.com ","customerId":"` + person + `"}`); got["customerId"] != person || got["created"] == true {
		t.Fatalf("attach: %v, want customer %s", got, person)
	}
	if lead := sys.captureLead(t, key, `{"email":"kim.new@example.com"}`); lead["customerId"] != person {
		t.Fatalf("capture of the attached e-mail: customer %v, want %s", lead["customerId"], person)
	}
	identity := sys.OK(t, http.MethodGet, "/v1/customers/"+person+"/identity", key, "")
	if fmt.Sprint(identity["emails"]) != "[kim@example.com kim.new@example.com]" {
		t.Fatalf("identity after the attach: %v, want the old and the new e-mail", identity["emails"])
	}
	if n := len(sys.events(t, tenant, marketingv1.EventCustomerUpdated.Name)); n != 1 {
		t.Fatalf("%d customer.updated events, want 1", n)
	}

	// gRPC: again changes nothing; refusals write nothing.
	keysBefore, eventsBefore := sys.footprint(t, tenant)
	again, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "kim.new@example.com", CustomerId: person})
	if err != nil || again.GetCustomer().GetCustomerId() != person {
		t.Fatalf("attach again: %v %v", again, err)
	}
	_, err = client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "LEE@example.com", CustomerId: person})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("attach another customer's e-mail: %v, want ALREADY_EXISTS", err)
	}
	if reason, meta := errorInfo(err); reason != "CUSTOMER_EMAIL_EXISTS" || meta["customer_id"] != other {
		t.Fatalf("refusal %s %v, want CUSTOMER_EMAIL_EXISTS naming %s", reason, meta, other)
	}
	details := sys.Fails(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"lee@example.com","customerId":"`+person+`"}`,
		http.StatusConflict, "ALREADY_EXISTS")
	if got := gatewaytest.ErrorMetadata(details)["customer_id"]; got != other {
		t.Fatalf("REST refusal names %v, want %s", got, other)
	}
	for _, req := range []*marketingv1.ResolveCustomerRequest{
		{Email: "nobody@example.com", CustomerId: "0190a000-0000-7000-8000-000000000000"},
		{Email: "kim.x@example.com", ExternalId: "erp-1", CustomerId: person},
		{ExternalId: "erp-1", CustomerId: person},
		{Email: "kim.x@example.com", CustomerId: "not-a-uuid"},
	} {
		want := codes.InvalidArgument
		if req.GetExternalId() == "" && strings.HasPrefix(req.GetCustomerId(), "0190") {
			want = codes.NotFound
		}
		if _, err := client.ResolveCustomer(ctx, req); status.Code(err) != want {
			t.Errorf("attach %v: %v, want %v", req, err, want)
		}
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused attachments wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
	if r := resolve(`{"email":"lee@example.com"}`); r["customerId"] != other {
		t.Fatalf("lee@ resolves to %v after the refusal, want %s", r["customerId"], other)
	}

	// A merged customer's e-mail joins the survivor.
	sys.OK(t, http.MethodPost, "/v1/customers/"+other+":merge", key, `{"mergedCustomerId":"`+person+`"}`)
	merged, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "kim.third@example.com", CustomerId: person})
	if err != nil || merged.GetCustomer().GetCustomerId() != other || merged.GetCustomer().GetMergedFrom() != person {
		t.Fatalf("attach to a merged customer: %v %v, want survivor %s merged from %s", merged, err, other, person)
	}
	if r := resolve(`{"email":"kim.third@example.com"}`); r["customerId"] != other {
		t.Fatalf("kim.third@ resolves to %v, want the survivor %s", r["customerId"], other)
	}

	// Two customers attach one e-mail at once: one has it, the other is refused naming it.
	for round := range 4 {
		a, b := sys.newCustomer(t, key), sys.newCustomer(t, key)
		email := fmt.Sprintf("both%d@example.com", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []string{a, b} {
			wg.Go(func() {
				_, errs[i] = client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: email, CustomerId: c})
			})
		}
		wg.Wait()
		got := []codes.Code{status.Code(errs[0]), status.Code(errs[1])}
		slices.Sort(got)
		if !slices.Equal(got, []codes.Code{codes.OK, codes.AlreadyExists}) {
			t.Fatalf("round %d: two attachments of one e-mail: %v, want one OK and one ALREADY_EXISTS", round, errs)
		}
		winner, loser := a, b
		if errs[0] != nil {
			winner, loser = b, a
		}
		if r := resolve(`{"email":"` + email + `"}`); r["customerId"] != winner {
			t.Fatalf("round %d: %s resolves to %v, want the winner %s", round, email, r["customerId"], winner)
		}
		if _, meta := errorInfo(cmp.Or(errs[0], errs[1])); meta["customer_id"] != winner {
			t.Fatalf("round %d: the refusal names %v, want the winner %s (not %s)", round, meta, winner, loser)
		}
	}
}

// TestResolveThatWritesNeedsAWriteScope: a key that may only read (marketing.read) looks people up
// but may not register one, nor attach an e-mail or external id to a customer (403 MISSING_SCOPE,
// nothing written); a key with another service's write scope may (it resolves for that service's
// own writes: a contact, a ticket), and so may marketing.write.
func TestResolveThatWritesNeedsAWriteScope(t *testing.T) {
	sys := startSystem(t)
	tenant, writer := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, salesWriter := sys.NewKey(t, tenant, "marketing.read", "sales.write")
	lead := sys.captureLead(t, writer, `{"email":"kim@example.com"}`)
	kim := lead["customerId"].(string)

	if got := sys.OK(t, http.MethodPost, "/v1/customers:resolve", reader, `{"email":"kim@example.com"}`); got["customer"].(map[string]any)["customerId"] != kim {
		t.Fatalf("a read key's lookup = %v, want %s", got, kim)
	}
	keysBefore, eventsBefore := sys.footprint(t, tenant)
	for _, body := range []string{
		`{"email":"new@example.com","create":true}`,
		`{"email":"kim@example.com","externalId":"ext-ro","create":true}`,
		`{"email":"hijack@example.com","customerId":"` + kim + `"}`,
	} {
		r := sys.Do(t, http.MethodPost, "/v1/customers:resolve", reader, []byte(body))
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "MISSING_SCOPE") {
			t.Errorf("a read key's resolve %s: %d %s, want 403 MISSING_SCOPE", body, r.Status, r.Body)
		}
	}
	r := sys.Do(t, http.MethodPost, "/v1/customers:batchResolve", reader, []byte(`{"requests":[{"email":"kim@example.com"},{"email":"b@example.com","create":true}]}`))
	if r.Status != http.StatusForbidden {
		t.Errorf("a read key's batch with a create: %d %s, want 403", r.Status, r.Body)
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused resolutions wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
	client, ctx := sys.marketing(reader)
	if _, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: "new@example.com", Create: true}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC create with a read key: %v, want PERMISSION_DENIED", err)
	}

	for _, key := range []string{salesWriter, writer} {
		if got := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"kim@example.com","externalId":"ext-`+key[:12]+`","create":true}`); got["customer"].(map[string]any)["customerId"] != kim {
			t.Errorf("a write key's resolve = %v, want %s", got, kim)
		}
	}
	identity := sys.OK(t, http.MethodGet, "/v1/customers/"+kim+"/identity", writer, "")
	if ids, _ := identity["externalIds"].([]any); len(ids) != 2 || fmt.Sprint(identity["emails"]) != "[kim@example.com]" {
		t.Errorf("identity after the refusals and two writes = %v, want kim's e-mail and two external ids", identity)
	}
}

// lifecycleMoved reports whether a merged customer's lifecycle read answers the survivor's: once
// the merge's reaction moved it, a read of the merged id follows the merge to the survivor.
func lifecycleMoved(t *testing.T, r gatewaytest.Response, survivor string) bool {
	t.Helper()
	var lc struct {
		CustomerID string `json:"customerId"`
	}
	return r.Status == http.StatusOK && json.Unmarshal(r.Body, &lc) == nil && lc.CustomerID == survivor
}
