package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// allowPrivateWebhooks lets the suite deliver to receivers on loopback.
func allowPrivateWebhooks(c *processConfig) { c.Integration.Webhooks.AllowPrivate = true }

// storedText is every value of the Redis keys matching pattern (strings, hashes, sets, sorted
// sets, lists, streams), raw, lower-cased: protobuf keeps strings as their UTF-8 bytes, so a
// personal datum stored anywhere shows in it.
func storedText(t *testing.T, rdb redis.UniversalClient, pattern string) (text []byte, keys int) {
	t.Helper()
	ctx := context.Background()
	var b bytes.Buffer
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		keys++
		b.WriteString(key + "\n")
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var values []string
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, key).Result()
			values = []string{v}
		case "hash":
			m, _ := rdb.HGetAll(ctx, key).Result()
			for k, v := range m {
				values = append(values, k, v)
			}
		case "set":
			values, _ = rdb.SMembers(ctx, key).Result()
		case "zset":
			values, _ = rdb.ZRange(ctx, key, 0, -1).Result()
		case "list":
			values, _ = rdb.LRange(ctx, key, 0, -1).Result()
		case "stream":
			msgs, _ := rdb.XRange(ctx, key, "-", "+").Result()
			for _, m := range msgs {
				for k, v := range m.Values {
					values = append(values, k, fmt.Sprint(v))
				}
			}
		}
		for _, v := range values {
			b.WriteString(v + "\n")
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return bytes.ToLower(b.Bytes()), keys
}

// TestEraseLeavesNoPersonalDataInTheIntegrationService: a person goes through marketing and sales
// (lead captured, updated, engaged, resolved, converted to a contact, the contact updated) with a
// webhook endpoint taking every event, then the contact and the lead are erased. Once the
// integration service has recorded every event of the tenant, nothing it stores (audit log,
// timelines, entries, deliveries and their bodies, queues), nothing its REST reads answer and
// nothing the receiver got names the person: not the e-mail (either case), the names, the phone.
// The same scan finds the e-mail in marketing's keys before the erase, so it would see it.
func TestEraseLeavesNoPersonalDataInTheIntegrationService(t *testing.T) {
	sys := startSystem(t, allowPrivateWebhooks)
	tenant, key := sys.newKey(t, "", append(slices.Clone(allScopes), "admin", "integration.read", "integration.write")...)
	var mu sync.Mutex
	var delivered bytes.Buffer
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		delivered.Write(body)
		delivered.WriteString("\n")
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	sys.ok(t, http.MethodPost, "/v1/webhookEndpoints", key, fmt.Sprintf(`{"url":%q,"description":"everything"}`, receiver.URL+"/hook"))

	email := "Zebulon.Quixwell-" + tenant + "@Example.org"
	personal := []string{strings.ToLower(email), "zebulon", "quixwell", "marchbanks", "7946 0958"}
	lead := sys.ok(t, http.MethodPost, "/v1/leads", key, fmt.Sprintf(
		`{"email":%q,"givenName":"Zebulon","familyName":"Quixwell","company":"Acme","channel":"CHANNEL_WEB","consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`, email))
	leadID, customer := str(lead, "id"), str(lead, "customerId")
	sys.ok(t, http.MethodPatch, "/v1/leads/"+leadID+"?updateMask=familyName", key, `{"familyName":"Quixwell-Marchbanks"}`)
	sys.ok(t, http.MethodPost, "/v1/leads/"+leadID+"/engagements", key, `{"type":"ENGAGEMENT_TYPE_EMAIL_OPEN"}`)
	sys.ok(t, http.MethodPost, "/v1/customers:resolve", key, fmt.Sprintf(`{"email":%q}`, strings.ToUpper(email)))
	conv := sys.ok(t, http.MethodPost, "/v1/leads/"+leadID+":convert", key, `{}`)
	contact := str(obj(conv, "contact"), "id")
	if contact == "" {
		t.Fatalf("the conversion made no contact: %v", conv)
	}
	sys.ok(t, http.MethodPatch, "/v1/contacts/"+contact+"?updateMask=phone", key, `{"phone":"+44 20 7946 0958"}`)

	before, _ := storedText(t, sys.rdb, "crm:*:marketing:"+tenant+":*")
	if !bytes.Contains(before, []byte(strings.ToLower(email))) {
		t.Fatal("the scan does not find the e-mail in marketing's keys before the erase: it would not find it anywhere")
	}
	sys.ok(t, http.MethodDelete, "/v1/contacts/"+contact, key, "")
	sys.ok(t, http.MethodDelete, "/v1/leads/"+leadID, key, "")

	// Every event of the tenant, on every stream, recorded in the audit log.
	streamed := func() []string {
		return streamedEventIDs(t, sys, tenant, func(*eventv1.Event) bool { return true })
	}
	var reads bytes.Buffer
	audited := func() []string {
		reads.Reset()
		r := sys.ok(t, http.MethodGet, "/v1/auditLog?pageSize=1000", key, "")
		var ids []string
		entries, _ := r["auditEntries"].([]any)
		for _, e := range entries {
			ids = append(ids, str(e.(map[string]any), "id"))
		}
		fmt.Fprint(&reads, r)
		slices.Sort(ids)
		return ids
	}
	waitFor(t, "the audit log to hold every event of the tenant", func() string { return fmt.Sprint(audited()) },
		func(got string) bool { return got == fmt.Sprint(streamed()) })
	if n := len(streamed()); n < 8 {
		t.Fatalf("only %d events in the streams", n)
	}
	deliveries := func() int {
		r := sys.ok(t, http.MethodGet, "/v1/webhookEndpoints", key, "")
		eps, _ := r["webhookEndpoints"].([]any)
		if len(eps) != 1 {
			t.Fatalf("endpoints: %v", r)
		}
		d := sys.ok(t, http.MethodGet, "/v1/webhookEndpoints/"+str(eps[0].(map[string]any), "id")+"/deliveries?pageSize=1000", key, "")
		list, _ := d["deliveries"].([]any)
		n := 0
		for _, x := range list {
			if str(x.(map[string]any), "state") == "DELIVERY_STATE_DELIVERED" {
				n++
			}
		}
		return n
	}
	waitFor(t, "every event delivered", deliveries, func(n int) bool { return n >= len(streamed()) })
	fmt.Fprint(&reads, sys.ok(t, http.MethodGet, "/v1/customers/"+customer+"/timeline?pageSize=1000", key, ""))

	// The erasure also ended the customer's delivery counts: the endpoint's sequence hash, which
	// had a field for the customer from the first delivery on, has none left.
	ctx := context.Background()
	counts := sys.rdb.Scan(ctx, 0, "crm:*:integration:"+tenant+":endpoint:*:sequences", 1000).Iterator()
	hashes := 0
	for counts.Next(ctx) {
		hashes++
		if left, err := sys.rdb.HExists(ctx, counts.Val(), customer).Result(); err != nil || left {
			t.Errorf("%s still counts the erased customer (%v)", counts.Val(), err)
		}
	}
	if hashes != 1 {
		t.Errorf("%d sequence hashes of the tenant, want the endpoint's one", hashes)
	}

	stored, n := storedText(t, sys.rdb, "crm:*:integration:"+tenant+":*")
	queues, _ := storedText(t, sys.rdb, "crm:*:integration:webhooks:due")
	if n < 10 {
		t.Fatalf("only %d integration keys of the tenant", n)
	}
	mu.Lock()
	sent := bytes.ToLower(delivered.Bytes())
	mu.Unlock()
	for _, where := range []struct {
		name string
		text []byte
	}{
		{fmt.Sprintf("the integration service's %d keys", n), stored},
		{"the due queues", queues},
		{"the audit log and timeline over REST", bytes.ToLower(reads.Bytes())},
		{"the webhook deliveries received", sent},
	} {
		for _, p := range personal {
			if bytes.Contains(where.text, []byte(p)) {
				t.Errorf("%s hold %q after the erase", where.name, p)
			}
		}
	}
}

// TestEraseDeletesTheSalesContact: a lead converted to a contact, then erased in marketing; sales
// hears "marketing.customer.erased" and deletes the contact: 404 by id, out of the list, the
// e-mail and name filters and the export, the person's e-mail, names and phone nowhere in sales'
// keys of the tenant. The same person captured and converted again makes one new contact (before,
// the orphan's e-mail made the conversion 409 CONTACT_EMAIL_EXISTS).
func TestEraseDeletesTheSalesContact(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", append(slices.Clone(allScopes), "sales.export")...)
	email := "Quinby.Vantreight-" + tenant + "@Example.org"
	personal := []string{strings.ToLower(email), "quinby", "vantreight", "7946 0958"}
	capture := func() (lead, contact map[string]any) {
		lead = sys.captureLead(t, key, fmt.Sprintf(`{"email":%q,"givenName":"Quinby","familyName":"Vantreight","company":"Acme"}`, email))
		conv := sys.ok(t, http.MethodPost, "/v1/leads/"+str(lead, "id")+":convert", key, `{}`)
		return lead, obj(conv, "contact")
	}
	lead, contact := capture()
	id := str(contact, "id")
	sys.ok(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=phone", key, `{"phone":"+44 20 7946 0958"}`)
	before, _ := storedText(t, sys.rdb, "crm:*:sales:"+tenant+":*")
	if !bytes.Contains(before, []byte(strings.ToLower(email))) {
		t.Fatal("the scan does not find the e-mail in sales' keys before the erase: it would not find it after")
	}

	sys.ok(t, http.MethodDelete, "/v1/leads/"+str(lead, "id"), key, "")
	waitFor(t, "the contact to be erased", func() int { return sys.do(t, http.MethodGet, "/v1/contacts/"+id, key, nil).status },
		func(status int) bool { return status == http.StatusNotFound })
	for _, filter := range []string{"", fmt.Sprintf("email = %q", strings.ToLower(email)), `displayName:"quinby*"`} {
		list := sys.ok(t, http.MethodGet, "/v1/contacts?filter="+url.QueryEscape(filter), key, "")
		if contacts, _ := list["contacts"].([]any); len(contacts) != 0 {
			t.Errorf("contacts filtered by %q after the erase: %v", filter, contacts)
		}
	}
	if r := sys.do(t, http.MethodGet, "/v1/contacts:export", key, nil); r.status != http.StatusOK || len(bytes.TrimSpace(r.body)) != 0 {
		t.Errorf("export after the erase: %d %q, want 200 and no records", r.status, r.body)
	}
	after, _ := storedText(t, sys.rdb, "crm:*:sales:"+tenant+":*")
	for _, p := range personal {
		if bytes.Contains(after, []byte(p)) {
			t.Errorf("sales' keys of the tenant hold %q after the erase", p)
		}
	}

	lead, contact = capture()
	list := sys.ok(t, http.MethodGet, "/v1/contacts", key, "")
	if contacts, _ := list["contacts"].([]any); len(contacts) != 1 || str(contacts[0].(map[string]any), "id") != str(contact, "id") ||
		str(contact, "customerId") != str(lead, "customerId") {
		t.Fatalf("the person again: contact %v of lead %v; contacts %v, want that one contact", contact, lead, list)
	}
}

// TestEraseCustomerWithoutALead: a person known only as a sales contact, with loyalty points, a
// ticket with a comment, a rating and an NPS answer with a comment, is erased by customer id
// (POST /v1/customers/{id}:erase). Marketing forgets them at once (resolving the e-mail finds
// nobody, lifecycle and loyalty are 404); sales deletes the contact and support redacts the
// ticket (subject "[erased]", no description or rating comment, no comments) and clears the NPS
// comment, keeping the ticket's status and priority and the scores; no key of support's holds the
// person's text.
func TestEraseCustomerWithoutALead(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.newKey(t, "", allScopes...)
	email := "Ottoline.Brandreth-" + tenant + "@example.org"
	contact := sys.ok(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":%q,"givenName":"Ottoline"}`, email))
	customer := str(contact, "customerId")
	sys.ok(t, http.MethodPost, "/v1/customers/"+customer+"/loyalty:credit", key, `{"points":"250","reason":"welcome"}`)
	ticket := str(sys.ok(t, http.MethodPost, "/v1/tickets", key, fmt.Sprintf(
		`{"customerId":%q,"subject":"Ottoline's parcel","description":"Ottoline Brandreth, 4 Elm Row","priority":"TICKET_PRIORITY_HIGH"}`, customer)), "id")
	sys.ok(t, http.MethodPost, "/v1/tickets/"+ticket+"/comments", key, `{"body":"Ottoline called from 0161 496 0000"}`)
	sys.ok(t, http.MethodPost, "/v1/tickets/"+ticket+":solve", key, `{}`)
	sys.ok(t, http.MethodPost, "/v1/tickets/"+ticket+":rate", key, `{"score":2,"comment":"Ottoline is unhappy"}`)
	sys.ok(t, http.MethodPost, "/v1/npsResponses", key, fmt.Sprintf(`{"customerId":%q,"score":3,"comment":"Ottoline would not recommend"}`, customer))
	personal := []string{"ottoline", "brandreth", "0161 496 0000"}
	if before, _ := storedText(t, sys.rdb, "crm:*:support:"+tenant+":*"); !bytes.Contains(before, []byte("ottoline")) {
		t.Fatal("the scan does not find the name in support's keys before the erase: it would not find it after")
	}

	erased := sys.ok(t, http.MethodPost, "/v1/customers/"+customer+":erase", key, `{}`)
	if ids, _ := erased["customerIds"].([]any); len(ids) != 1 || ids[0] != customer {
		t.Fatalf("erase = %v, want customer %s", erased, customer)
	}
	if r := sys.do(t, http.MethodPost, "/v1/customers:resolve", key, []byte(fmt.Sprintf(`{"email":%q}`, email))); r.status != http.StatusNotFound {
		t.Errorf("resolve the e-mail after the erase: %d %s, want 404", r.status, r.body)
	}
	for _, path := range []string{"/v1/customers/" + customer + "/lifecycle", "/v1/customers/" + customer + "/loyalty"} {
		if r := sys.do(t, http.MethodGet, path, key, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s after the erase: %d %s, want 404", path, r.status, r.body)
		}
	}
	waitFor(t, "the contact to be deleted", func() int { return sys.do(t, http.MethodGet, "/v1/contacts/"+str(contact, "id"), key, nil).status },
		func(status int) bool { return status == http.StatusNotFound })
	// The answer's comment is cleared after the ticket's text: once it is, the ticket is done.
	answer := waitFor(t, "the NPS comment to be cleared", func() map[string]any {
		answers, _ := sys.ok(t, http.MethodGet, "/v1/npsResponses?filter="+url.QueryEscape(fmt.Sprintf("customer_id = %q", customer)), key, "")["npsResponses"].([]any)
		if len(answers) != 1 {
			t.Fatalf("the customer's NPS answers: %v, want one", answers)
		}
		return answers[0].(map[string]any)
	}, func(a map[string]any) bool { return a["comment"] == nil })
	if answer["score"] != float64(3) {
		t.Errorf("the NPS answer after the erase = %v, want its score 3 kept", answer)
	}
	got := sys.ok(t, http.MethodGet, "/v1/tickets/"+ticket, key, "")
	if got["subject"] != "[erased]" || got["description"] != nil || obj(got, "csat")["comment"] != nil ||
		got["status"] != "TICKET_STATUS_SOLVED" || got["priority"] != "TICKET_PRIORITY_HIGH" || obj(got, "csat")["score"] != float64(2) {
		t.Errorf("the ticket after the erase = %v, want its text redacted, its status, priority and rating kept", got)
	}
	if comments, _ := sys.ok(t, http.MethodGet, "/v1/tickets/"+ticket+"/comments", key, "")["comments"].([]any); len(comments) != 0 {
		t.Errorf("the ticket's comments after the erase: %v, want none", comments)
	}
	after, _ := storedText(t, sys.rdb, "crm:*:support:"+tenant+":*")
	for _, p := range personal {
		if bytes.Contains(after, []byte(p)) {
			t.Errorf("support's keys of the tenant hold %q after the erase", p)
		}
	}
}
