package rpc_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestUpdateLeadOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ada@example.com","givenName":"Ada","company":"Old Co",
		"consent":[{"channel":"CHANNEL_EMAIL","granted":true}]}`)).JSON(t)
	id := lead["id"].(string)
	sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"grace@example.com"}`))

	upd := sys.Do(t, http.MethodPatch, "/v1/leads/"+id+"?updateMask=company,givenName", key,
		[]byte(`{"company":"Analytical Engines","givenName":"Augusta","familyName":"ignored","etag":"1"}`))
	got := upd.JSON(t)
	if upd.Status != http.StatusOK || got["company"] != "Analytical Engines" || got["givenName"] != "Augusta" ||
		got["familyName"] != nil || got["etag"] != "2" || got["email"] != "ada@example.com" {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	if consent := got["consent"].([]any); len(consent) != 1 {
		t.Fatalf("consent changed by an update that did not name it: %v", consent)
	}

	for _, tt := range []struct {
		name, path, body string
		status           int
		want             string // error.status
		field            string
	}{
		{"stale etag", "?updateMask=company", `{"company":"x","etag":"1"}`, 409, "ABORTED", ""},
		{"e-mail of another lead", "?updateMask=email", `{"email":" GRACE@example.com "}`, 409, "ALREADY_EXISTS", ""},
		{"bad e-mail", "?updateMask=email", `{"email":"nope"}`, 400, "INVALID_ARGUMENT", "lead.email"},
		{"oversize name", "?updateMask=givenName", `{"givenName":"` + strings.Repeat("x", 101) + `"}`, 400, "INVALID_ARGUMENT", "lead.givenName"},
		{"output-only field in the mask", "?updateMask=status", `{"status":"LEAD_STATUS_CONVERTED"}`, 400, "INVALID_ARGUMENT", "updateMask"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sys.Do(t, http.MethodPatch, "/v1/leads/"+id+tt.path, key, []byte(tt.body))
			if r.Status != tt.status || r.ErrorStatus(t) != tt.want {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.want)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v do not name %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	if cur := sys.Do(t, http.MethodGet, "/v1/leads/"+id, key, nil).JSON(t); cur["etag"] != "2" {
		t.Fatalf("a refused update changed the lead: %v", cur)
	}

	// A new e-mail moves the unique claim: the old one is free, the new one is this lead's.
	moved := sys.Do(t, http.MethodPatch, "/v1/leads/"+id+"?updateMask=email", key, []byte(`{"email":"Ada@Engines.example"}`))
	if moved.Status != http.StatusOK || moved.JSON(t)["email"] != "ada@engines.example" {
		t.Fatalf("e-mail change: %d %s", moved.Status, moved.Body)
	}
	if again := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ada@engines.example"}`)).JSON(t); again["id"] != id {
		t.Fatalf("capture of the new e-mail found %v, want lead %s", again["id"], id)
	}
	if fresh := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"ada@example.com"}`)).JSON(t); fresh["id"] == id {
		t.Fatal("the old e-mail still resolves to the lead")
	}
}

func TestEraseLead(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	campaign := sys.createCampaign(t, key, campaignBody)["id"].(string)
	lead := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"forget.me@example.com","givenName":"Forget","campaignId":"`+campaign+`","channel":"CHANNEL_WEB"}`)).JSON(t)
	id := lead["id"].(string)

	if r := sys.Do(t, http.MethodDelete, "/v1/leads/"+id+"?etag=7", key, nil); r.Status != http.StatusConflict {
		t.Fatalf("erase with a stale etag: %d %s, want 409", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodDelete, "/v1/leads/"+id, key, nil); r.Status != http.StatusOK || string(r.Body) != "{}" {
		t.Fatalf("erase: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/leads/"+id, key, nil); r.Status != http.StatusNotFound {
		t.Fatalf("get after erase: %d, want 404", r.Status)
	}
	if r := sys.Do(t, http.MethodDelete, "/v1/leads/"+id, key, nil); r.Status != http.StatusNotFound {
		t.Fatalf("second erase: %d, want 404", r.Status)
	}
	for _, filter := range []string{"", "?filter=channel%20%3D%20CHANNEL_WEB", "?filter=status%20%3D%20LEAD_STATUS_NEW"} {
		if leads := sys.Do(t, http.MethodGet, "/v1/leads"+filter, key, nil).JSON(t)["leads"]; leads != nil {
			t.Fatalf("list%s after erase: %v", filter, leads)
		}
	}
	// Nothing personal is left in Redis: no key or value mentions the e-mail or the name.
	ctx := context.Background()
	iter := sys.Suite.Redis.Scan(ctx, 0, "crm:*:marketing:"+tenant+":*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		dump, _ := sys.Suite.Redis.Dump(ctx, k).Result()
		if strings.Contains(k, "forget.me") || strings.Contains(dump, "forget.me") || strings.Contains(dump, "Forget") {
			t.Fatalf("%s still holds the erased person's data", k)
		}
	}
	// Counters keep counting; the e-mail is free for a new, different lead.
	if p := sys.Do(t, http.MethodGet, "/v1/campaigns/"+campaign+"/performance", key, nil).JSON(t); p["leads"] != "1" {
		t.Fatalf("campaign leads after erase = %v, want 1", p["leads"])
	}
	if again := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"forget.me@example.com"}`)).JSON(t); again["id"] == id || again["touchCount"] != "1" {
		t.Fatalf("capture after erase = %v, want a new lead", again)
	}
	// No event of the tenant carries the person's data (events hold ids, not personal data), and the
	// erased event names the lead.
	var erased *marketingv1.LeadErased
	for _, ev := range sys.Suite.Events(t, "marketing", tenant, "") {
		if ev.GetType() == "marketing.lead.erased" {
			erased = &marketingv1.LeadErased{}
			if err := ev.GetPayload().UnmarshalTo(erased); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("forget.me")) || bytes.Contains(raw, []byte("Forget")) {
			t.Fatalf("event %s (%s) carries the erased person's data", ev.GetId(), ev.GetType())
		}
	}
	if erased == nil || erased.GetLeadId() != id || erased.GetCustomerId() != lead["customerId"] {
		t.Fatalf("erased event = %v, want lead %s", erased, id)
	}
}

// personErased checks that a person is gone for good: none of their leads can be read, no e-mail
// filter lists them, the registry knows none of their e-mails or customer ids, and a capture or a
// contact of each e-mail makes a new customer.
func personErased(t *testing.T, sys *system, key string, leads, emails, customers []string) {
	t.Helper()
	client, ctx := sys.marketing(key)
	for _, id := range leads {
		if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id}); status.Code(err) != codes.NotFound {
			t.Errorf("lead %s of the erased person: %v, want NOT_FOUND", id, err)
		}
	}
	for _, id := range customers {
		if _, err := client.GetCustomerIdentity(ctx, &marketingv1.GetCustomerIdentityRequest{CustomerId: id}); status.Code(err) != codes.NotFound {
			t.Errorf("identity of erased customer %s: %v, want NOT_FOUND", id, err)
		}
	}
	for _, email := range emails {
		listed, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "` + email + `"`})
		if err != nil || len(listed.GetLeads()) != 0 {
			t.Errorf("leads with %s after the erase: %v %v, want none", email, listed.GetLeads(), err)
		}
		if _, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: email}); status.Code(err) != codes.NotFound {
			t.Errorf("resolve %s after the erase: %v, want NOT_FOUND", email, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Each e-mail is a stranger now: a capture of the first makes a new lead of a new customer, a
	// contact of the others registers new customers too.
	again, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: emails[0]}})
	if err != nil || slices.Contains(leads, again.GetLead().GetId()) || slices.Contains(customers, again.GetLead().GetCustomerId()) ||
		again.GetLead().GetTouchCount() != 1 {
		t.Fatalf("capture of %s after the erase = %v %v, want a new lead of a new customer", emails[0], again.GetLead(), err)
	}
	for _, email := range emails[1:] {
		r, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: email, Create: true})
		if err != nil || !r.GetCustomer().GetCreated() || slices.Contains(customers, r.GetCustomer().GetCustomerId()) ||
			r.GetCustomer().GetCustomerId() == again.GetLead().GetCustomerId() {
			t.Fatalf("contact of %s after the erase = %v %v, want a new customer", email, r, err)
		}
	}
}

// Erasing a lead erases the person: a merged customer's lead goes with the survivor's, whichever
// of the two is erased, before or after the merge's reaction moved the merged lead.
func TestEraseLeadOfMergedCustomers(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	for _, c := range []struct {
		name                string
		eraseMerged, settle bool
	}{
		{"the merged lead, once moved", true, true},
		{"the survivor's lead, once moved", false, true},
		{"the merged lead, at once", true, false},
		{"the survivor's lead, at once", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, y := "cmx."+uuid.NewString()[:8]+"@example.com", "cmy."+uuid.NewString()[:8]+"@example.com"
			xl, yl := sys.captureLead(t, key, `{"email":"`+x+`","givenName":"Xavier"}`), sys.captureLead(t, key, `{"email":"`+y+`"}`)
			xc, yc := xl["customerId"].(string), yl["customerId"].(string)
			sys.OK(t, http.MethodPost, "/v1/customers/"+xc+":merge", key, `{"mergedCustomerId":"`+yc+`"}`)
			if c.settle {
				// marketing's consumer moves the merged customer's lead to the survivor.
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					got, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: yl["id"].(string)})
					if err == nil && got.GetLead().GetCustomerId() == xc {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the merged lead did not move to the survivor: %v %v", got, err)
					}
				}
			}
			erase := xl["id"].(string)
			if c.eraseMerged {
				erase = yl["id"].(string)
			}
			if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: erase}); err != nil {
				t.Fatal(err)
			}
			personErased(t, sys, key, []string{xl["id"].(string), yl["id"].(string)}, []string{x, y}, []string{xc, yc})
			var erased []string
			for _, ev := range sys.events(t, tenant, marketingv1.EventCustomerErased.Name) {
				erased = append(erased, ev.GetCustomerId())
			}
			if !slices.Contains(erased, xc) || !slices.Contains(erased, yc) {
				t.Fatalf("customers erased = %v, want %s and %s among them", erased, xc, yc)
			}
		})
	}
}

// A lead whose e-mail was edited leaves the old e-mail with its customer, so a capture of the old
// one makes a second lead of the same customer: erasing either erases both.
func TestEraseLeadOfEditedEmail(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	for _, eraseFirst := range []bool{false, true} {
		a, b := "mv-a."+uuid.NewString()[:8]+"@example.com", "mv-b."+uuid.NewString()[:8]+"@example.com"
		first := sys.captureLead(t, key, `{"email":"`+a+`","givenName":"Mona"}`)
		sys.OK(t, http.MethodPatch, "/v1/leads/"+first["id"].(string)+"?updateMask=email", key, `{"email":"`+b+`"}`)
		second := sys.captureLead(t, key, `{"email":"`+a+`"}`)
		if second["id"] == first["id"] || second["customerId"] != first["customerId"] {
			t.Fatalf("capture of the old e-mail = %v, want a second lead of customer %v", second, first["customerId"])
		}
		erase := second["id"].(string)
		if eraseFirst {
			erase = first["id"].(string)
		}
		if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: erase}); err != nil {
			t.Fatal(err)
		}
		personErased(t, sys, key, []string{first["id"].(string), second["id"].(string)}, []string{a, b}, []string{first["customerId"].(string)})
	}
}

func TestLeadChangesOverGRPCAndIsolation(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "admin")
	client, ctx := sys.marketing(key)
	captured, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "g@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	id := captured.GetLead().GetId()
	upd, err := client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{
		Lead:       &marketingv1.Lead{Id: id, Tags: []string{"vip"}, Etag: "1"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tags"}}})
	if err != nil || !slices.Equal(upd.GetLead().GetTags(), []string{"vip"}) {
		t.Fatalf("update tags: %v %v", upd, err)
	}
	if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: id, Etag: "1"}); status.Code(err) != codes.Aborted {
		t.Fatalf("erase with a stale etag: %v, want Aborted", err)
	}

	for _, call := range []struct{ method, path, body string }{
		{"PATCH", "/v1/leads/" + id + "?updateMask=company", `{"company":"mine"}`},
		{"DELETE", "/v1/leads/" + id, ""},
	} {
		var body []byte
		if call.body != "" {
			body = []byte(call.body)
		}
		if r := sys.Do(t, call.method, call.path, stranger, body); r.Status != http.StatusNotFound {
			t.Errorf("%s with another tenant's key: %d %s, want 404", call.method, r.Status, r.Body)
		}
	}
	if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: id, Etag: "2"}); err != nil {
		t.Fatalf("erase: %v", err)
	}
}

// TestUpdateLeadWithoutAMask: over gRPC, an update without update_mask changes the fields the
// request's lead sets and keeps the others (AIP-134), where it used to clear the e-mail and fail;
// one that sets none changes nothing: the lead as it is, same etag, no event, also as a PATCH {}.
func TestUpdateLeadWithoutAMask(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	captured, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{
		Email: "ada@example.com", GivenName: "Ada", Company: "Old Co", Tags: []string{"vip"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := captured.GetLead().GetId()

	upd, err := client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Company: "Engines Ltd"}})
	if err != nil {
		t.Fatal(err)
	}
	got := upd.GetLead()
	if got.GetCompany() != "Engines Ltd" || got.GetEmail() != "ada@example.com" || got.GetGivenName() != "Ada" ||
		!slices.Equal(got.GetTags(), []string{"vip"}) || got.GetEtag() != "2" {
		t.Fatalf("a company change without a mask: got %v, want only the company changed, at etag 2", got)
	}
	updated := sys.events(t, tenant, marketingv1.EventLeadUpdated.Name)
	if len(updated) != 1 {
		t.Fatalf("%d lead.updated events, want 1", len(updated))
	}
	var fields marketingv1.LeadUpdated
	if err := updated[0].GetPayload().UnmarshalTo(&fields); err != nil || !slices.Equal(fields.GetFields(), []string{"company"}) {
		t.Fatalf("lead.updated names %v (%v), want [company]", fields.GetFields(), err)
	}

	for _, etag := range []string{"", "2"} {
		same, err := client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Etag: etag}})
		if err != nil || !proto.Equal(same.GetLead(), got) {
			t.Fatalf("nothing to update (etag %q): got %v, %v, want the lead unchanged %v", etag, same, err, got)
		}
	}
	if _, err := client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Etag: "1"}}); status.Code(err) != codes.Aborted {
		t.Fatalf("nothing to update at a stale etag: %v, want Aborted", err)
	}
	if r := sys.Do(t, http.MethodPatch, "/v1/leads/"+id, key, []byte(`{}`)); r.Status != http.StatusOK || r.JSON(t)["etag"] != "2" || r.JSON(t)["email"] != "ada@example.com" {
		t.Fatalf("PATCH {}: %d %s, want the lead unchanged at etag 2", r.Status, r.Body)
	}
	read, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id})
	if err != nil || !proto.Equal(read.GetLead(), got) {
		t.Fatalf("read back: %v, %v, want %v", read, err, got)
	}
	if n := len(sys.events(t, tenant, marketingv1.EventLeadUpdated.Name)); n != 1 {
		t.Fatalf("%d lead.updated events after the empty updates, want still 1", n)
	}
}

// TestETagAndIfMatchOverREST checks the HTTP concurrency conventions on a lead: the ETag header of
// every single-lead answer is its etag; If-Match on PATCH, DELETE and a custom method (:qualify)
// is 412 when stale and changes nothing, and goes through when current; of two PATCHes sent at once
// with the same If-Match, exactly one wins.
func TestETagAndIfMatchOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := sys.captureLead(t, key, `{"email":"etag@example.com"}`)
	path := "/v1/leads/" + lead["id"].(string)
	ifMatch := func(tag string) http.Header { return http.Header{"If-Match": {tag}} }

	get := sys.Do(t, http.MethodGet, path, key, nil)
	if get.Header.Get("ETag") != `"`+get.JSON(t)["etag"].(string)+`"` {
		t.Fatalf("ETag %q for a lead whose etag is %v", get.Header.Get("ETag"), get.JSON(t)["etag"])
	}
	current := get.Header.Get("ETag")

	for _, tt := range []struct{ method, suffix, body string }{
		{http.MethodPatch, "?updateMask=company", `{"company":"Stale Co"}`},
		{http.MethodPost, ":qualify", `{}`},
		{http.MethodDelete, "", ""},
	} {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := sys.DoWith(t, tt.method, path+tt.suffix, key, body, ifMatch(`"999"`))
		if r.Status != http.StatusPreconditionFailed {
			t.Errorf("%s %s with a stale If-Match: %d %s, want 412", tt.method, tt.suffix, r.Status, r.Body)
		}
	}
	if after := sys.Do(t, http.MethodGet, path, key, nil); after.Header.Get("ETag") != current || after.JSON(t)["status"] != "LEAD_STATUS_NEW" {
		t.Fatalf("refused changes changed the lead: %s", after.Body)
	}

	qualified := sys.DoWith(t, http.MethodPost, path+":qualify", key, []byte(`{}`), ifMatch(current))
	if qualified.Status != http.StatusOK || qualified.JSON(t)["status"] != "LEAD_STATUS_MARKETING_QUALIFIED" || qualified.Header.Get("ETag") == current {
		t.Fatalf("qualify with the current If-Match: %d %s", qualified.Status, qualified.Body)
	}
	current = qualified.Header.Get("ETag")

	// Two PATCHes at once based on the same ETag: the service checks it in the write, so one wins.
	statuses := make(chan int, 2)
	for _, company := range []string{"First Co", "Second Co"} {
		go func() {
			statuses <- sys.DoWith(t, http.MethodPatch, path+"?updateMask=company", key, []byte(`{"company":"`+company+`"}`), ifMatch(current)).Status
		}()
	}
	got := []int{<-statuses, <-statuses}
	slices.Sort(got)
	if !slices.Equal(got, []int{http.StatusOK, http.StatusPreconditionFailed}) {
		t.Fatalf("concurrent PATCHes with one If-Match: %v, want one 200 and one 412", got)
	}
	current = sys.Do(t, http.MethodGet, path, key, nil).Header.Get("ETag")
	if del := sys.DoWith(t, http.MethodDelete, path, key, nil, ifMatch(current)); del.Status != http.StatusOK {
		t.Fatalf("delete with the current If-Match: %d %s", del.Status, del.Body)
	}
}

// TestLeadEmailEditKeepsOnePerson: an e-mail edit adds the new e-mail to the lead's customer in
// the registry in the lead's own write, so the person stays one customer: resolving the new e-mail
// finds them, capturing it touches the lead, and the old e-mail stays theirs. An e-mail the
// registry has for another customer is refused, naming them, and nothing changes.
func TestLeadEmailEditKeepsOnePerson(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	lead := sys.captureLead(t, key, `{"email":"mask@example.com"}`)
	id, customer := lead["id"].(string), lead["customerId"].(string)
	resolve := func(email string) map[string]any {
		return sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"`+email+`"}`)["customer"].(map[string]any)
	}
	identity := func(customer string) []any {
		return sys.OK(t, http.MethodGet, "/v1/customers/"+customer+"/identity", key, "")["emails"].([]any)
	}

	if got := sys.OK(t, http.MethodPatch, "/v1/leads/"+id+"?updateMask=email", key, `{"email":" Mask2@Example.com "}`); got["email"] != "mask2@example.com" || got["customerId"] != customer {
		t.Fatalf("e-mail edit: %v", got)
	}
	if r := resolve("mask2@example.com"); r["customerId"] != customer || r["created"] == true {
		t.Fatalf("resolve of the new e-mail: %v, want customer %s", r, customer)
	}
	if emails := identity(customer); !slices.Equal(emails, []any{"mask@example.com", "mask2@example.com"}) {
		t.Fatalf("identity e-mails %v, want the old and the new", emails)
	}
	if again := sys.captureLead(t, key, `{"email":"mask2@example.com"}`); again["id"] != id || again["touchCount"] != "2" {
		t.Fatalf("capture of the new e-mail: %v, want a touch of lead %s", again, id)
	}
	if old := sys.captureLead(t, key, `{"email":"mask@example.com"}`); old["customerId"] != customer {
		t.Fatalf("capture of the old e-mail: customer %v, want %s", old["customerId"], customer)
	}
	updated := sys.events(t, tenant, "marketing.customer.updated")
	if len(updated) != 1 || updated[0].GetCustomerId() != customer {
		t.Fatalf("%d marketing.customer.updated events (%v), want 1 of %s", len(updated), updated, customer)
	}

	// An e-mail the registry has for another customer (no lead has it): refused, nothing written.
	other := sys.OK(t, http.MethodPost, "/v1/customers:resolve", key,
		`{"email":"taken@example.com","create":true}`)["customer"].(map[string]any)["customerId"].(string)
	before := sys.OK(t, http.MethodGet, "/v1/leads/"+id, key, "")
	keys, events := sys.footprint(t, tenant)
	details := sys.Fails(t, http.MethodPatch, "/v1/leads/"+id+"?updateMask=email", key, `{"email":"TAKEN@example.com"}`,
		http.StatusConflict, "ALREADY_EXISTS")
	if reason := errorReason(details); reason != "CUSTOMER_EMAIL_EXISTS" {
		t.Errorf("reason %q, want CUSTOMER_EMAIL_EXISTS", reason)
	}
	if got := gatewaytest.ErrorMetadata(details)["customer_id"]; got != other {
		t.Errorf("the refusal names customer %v, want %s", got, other)
	}
	if after := sys.OK(t, http.MethodGet, "/v1/leads/"+id, key, ""); after["etag"] != before["etag"] || after["email"] != "mask2@example.com" {
		t.Fatalf("a refused edit changed the lead: %v", after)
	}
	if k, e := sys.footprint(t, tenant); k != keys || e != events {
		t.Fatalf("a refused edit wrote: %d keys %d events, want %d and %d", k, e, keys, events)
	}
	if r := resolve("taken@example.com"); r["customerId"] != other {
		t.Fatalf("taken@ resolves to %v, want %s", r["customerId"], other)
	}
	if emails := identity(customer); len(emails) != 2 {
		t.Fatalf("the refused edit changed the identity: %v", emails)
	}
}

// TestLeadEmailEditRaces: the registry's claim in the lead's write decides between an edit and
// captures of its new e-mail, and between two leads' edits to one e-mail: whoever wins, the
// e-mail has one customer, the one its lead carries.
func TestLeadEmailEditRaces(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	edit := func(id, email string) (*marketingv1.UpdateLeadResponse, error) {
		return client.UpdateLead(ctx, &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Email: email},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}})
	}
	// owner is who the registry and the lead index give the e-mail to; both must agree.
	owner := func(email string) string {
		t.Helper()
		r, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: email})
		if err != nil {
			t.Fatalf("resolve %s: %v", email, err)
		}
		leads, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "` + email + `"`})
		if err != nil || len(leads.GetLeads()) != 1 || leads.GetLeads()[0].GetCustomerId() != r.GetCustomer().GetCustomerId() {
			t.Fatalf("%s: registry says %s, leads %v %v", email, r.GetCustomer().GetCustomerId(), leads.GetLeads(), err)
		}
		return r.GetCustomer().GetCustomerId()
	}

	for round := range 6 {
		email := fmt.Sprintf("race%d@example.com", round)
		lead := sys.captureLead(t, key, fmt.Sprintf(`{"email":"edited%d@example.com"}`, round))
		const captures = 4
		var (
			wg       sync.WaitGroup
			edited   error
			captured [captures]string
		)
		wg.Go(func() { _, edited = edit(lead["id"].(string), email) })
		for i := range captures {
			wg.Go(func() {
				// Later rounds start the captures a few reads later, so the edit wins some rounds
				// and loses others (it reads three times before its write).
				for range round {
					if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: lead["id"].(string)}); err != nil {
						t.Error(err)
					}
				}
				r, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: email}})
				if err != nil {
					t.Errorf("capture: %v", err)
				}
				captured[i] = r.GetLead().GetCustomerId()
			})
		}
		wg.Wait()
		got := owner(email)
		switch status.Code(edited) {
		case codes.OK:
			if got != lead["customerId"] {
				t.Fatalf("round %d: the edit won but %s has customer %s, want %s", round, email, got, lead["customerId"])
			}
		case codes.AlreadyExists:
			if got == lead["customerId"] {
				t.Fatalf("round %d: the edit was refused but %s is its customer's", round, email)
			}
		default:
			t.Fatalf("round %d: edit: %v", round, edited)
		}
		for _, c := range captured {
			if c != got {
				t.Fatalf("round %d: captures gave customers %v, want all %s", round, captured, got)
			}
		}
	}

	// Two leads' edits to one e-mail at once: one wins, the other is refused.
	a, b := sys.captureLead(t, key, `{"email":"a@example.com"}`), sys.captureLead(t, key, `{"email":"b@example.com"}`)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, l := range []map[string]any{a, b} {
		wg.Go(func() { _, errs[i] = edit(l["id"].(string), "both@example.com") })
	}
	wg.Wait()
	codesGot := []codes.Code{status.Code(errs[0]), status.Code(errs[1])}
	slices.Sort(codesGot)
	if !slices.Equal(codesGot, []codes.Code{codes.OK, codes.AlreadyExists}) {
		t.Fatalf("two edits to one e-mail: %v, want one OK and one AlreadyExists", errs)
	}
	winner := a
	if errs[0] != nil {
		winner = b
	}
	if got := owner("both@example.com"); got != winner["customerId"] {
		t.Fatalf("both@ belongs to %s, want the winner's %s", got, winner["customerId"])
	}
}

// errorReason is the ErrorInfo reason among an error's details.
func errorReason(details []any) string {
	for _, d := range details {
		if dm, _ := d.(map[string]any); dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			reason, _ := dm["reason"].(string)
			return reason
		}
	}
	return ""
}
