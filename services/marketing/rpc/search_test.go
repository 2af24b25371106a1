package rpc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/search/searchtest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// searchedLead is a captured lead and the plain forms of what search reads.
type searchedLead struct {
	id, email, name, company string
	status                   marketingv1.LeadStatus
}

// captureMany captures n leads with generated names and companies, four at a time.
func captureMany(t *testing.T, client marketingv1.MarketingServiceClient, ctx context.Context, n int) []searchedLead {
	t.Helper()
	out := make([]searchedLead, n)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 15))
			for i := w; i < n; i += 4 {
				given, family := searchtest.Pick(rng, searchtest.Given), searchtest.Pick(rng, searchtest.Family)
				company := searchtest.Pick(rng, searchtest.Companies)
				email := fmt.Sprintf("Lead%05d@Example.com", i)
				res, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{
					Email: email, GivenName: given.Text, FamilyName: family.Text, Company: company.Text}})
				if err != nil {
					errs <- err
					return
				}
				out[i] = searchedLead{id: res.GetLead().GetId(), email: strings.ToLower(email),
					name: given.Plain + " " + family.Plain, company: company.Plain, status: res.GetLead().GetStatus()}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// listAll pages through ListLeads with filter and returns the ids in order.
func listAll(t *testing.T, client marketingv1.MarketingServiceClient, ctx context.Context, filter string, size int32) []string {
	t.Helper()
	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		res, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: filter, PageSize: size, PageToken: token})
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		for _, l := range res.GetLeads() {
			ids = append(ids, l.GetId())
		}
		if token = res.GetNextPageToken(); token == "" {
			return ids
		}
		if pages > 10_000 {
			t.Fatalf("%s: no last page", filter)
		}
	}
}

// TestLeadSearchAgainstAnIndependentComputation: leads with names and companies in random case
// and accents; every prefix query, typed plain or decorated, finds exactly the leads whose plain
// words start with it, each once; an e-mail in any case finds its lead; pairs narrow on the record.
func TestLeadSearchAgainstAnIndependentComputation(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	start := time.Now()
	leads := captureMany(t, client, ctx, servicetest.Size(5_000, 50_000))
	t.Logf("captured %d leads in %v", len(leads), time.Since(start))

	var names, companies []searchtest.Record
	for _, l := range leads {
		names = append(names, searchtest.Record{ID: l.id, Plain: l.name})
		companies = append(companies, searchtest.Record{ID: l.id, Plain: l.company})
	}
	find := func(filter string, i int) []string {
		return listAll(t, client, ctx, filter, []int32{1000, 1000, 1000, 97}[i%4])
	}
	searchtest.Check(t, "display_name", names, [][]string{searchtest.Given, searchtest.Family}, find)
	searchtest.Check(t, "company", companies, [][]string{searchtest.Companies}, find)

	for _, l := range leads[:200] {
		got := listAll(t, client, ctx, fmt.Sprintf("email = %q", strings.ToUpper(l.email)), 10)
		if !slices.Equal(got, []string{l.id}) {
			t.Fatalf("email = %q: %v, want %s", l.email, got, l.id)
		}
		for status, want := range map[marketingv1.LeadStatus]bool{l.status: true, marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED: false} {
			got := listAll(t, client, ctx, fmt.Sprintf("email = %q AND status = %s", l.email, status), 10)
			if (len(got) == 1) != want {
				t.Fatalf("email and status %s: %v, want found %v", status, got, want)
			}
		}
	}
	if got := listAll(t, client, ctx, `email = "nobody@example.com"`, 10); len(got) != 0 {
		t.Errorf("unknown e-mail: %v, want none", got)
	}
	// A name search with a status that no lead has examines a bounded part of the index per call,
	// and still ends.
	if got := listAll(t, client, ctx, `display_name:"a*" AND status = LEAD_STATUS_DISQUALIFIED`, 100); len(got) != 0 {
		t.Errorf("name and an absent status: %v, want none", got)
	}
}

// TestLeadIsFoundTheMomentItIsWritten: 1,000 times, a capture then at once a search by its name
// and a lookup by its e-mail find it; an erase takes it out of both.
func TestLeadIsFoundTheMomentItIsWritten(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	for i := range 1000 {
		name := fmt.Sprintf("Wrïte%04d", i)
		res, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{
			Email: fmt.Sprintf("w%d@example.com", i), GivenName: "Probe", FamilyName: name}})
		if err != nil {
			t.Fatal(err)
		}
		id := res.GetLead().GetId()
		if got := listAll(t, client, ctx, fmt.Sprintf("displayName:%q", strings.ToUpper(name)+"*"), 10); !slices.Equal(got, []string{id}) {
			t.Fatalf("write %d: search found %v, want %s", i, got, id)
		}
		if i%100 != 0 {
			continue
		}
		if _, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{fmt.Sprintf("displayName:%q", name+"*"), fmt.Sprintf("email = \"w%d@example.com\"", i)} {
			if got := listAll(t, client, ctx, f, 10); len(got) != 0 {
				t.Fatalf("erased lead %d: %s found %v", i, f, got)
			}
		}
	}
}

// TestLeadSearchOverRESTIsTenantScopedAndChecked: the REST forms, another tenant's key sees
// nothing, and filters the search cannot serve are 400 naming the filter.
func TestLeadSearchOverRESTIsTenantScopedAndChecked(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	id := sys.captureLead(t, key, `{"email":"Ada@Example.com","givenName":"Ada","familyName":"Lovelace","company":"Analytical Engines"}`)["id"].(string)
	get := func(k, filter, orderBy string) (int, map[string]any) {
		r := sys.Do(t, http.MethodGet, "/v1/leads?"+url.Values{"filter": {filter}, "orderBy": {orderBy}}.Encode(), k, nil)
		return r.Status, r.JSON(t)
	}
	// The person's id in another system, registered with marketing's identity registry.
	sys.OK(t, http.MethodPost, "/v1/customers:resolve", key, `{"email":"ada@example.com","externalId":"erp-ada","create":true}`)
	for _, f := range []string{`email="ada@example.com"`, `externalId = "erp-ada"`, `external_id = "erp-ada" AND status = LEAD_STATUS_NEW`, `displayName:"LOVEL*"`, `display_name:"ada lo*"`, `company:"analytïcal*"`, `company:"eng*" AND status = LEAD_STATUS_NEW`} {
		code, body := get(key, f, "")
		leads, _ := body["leads"].([]any)
		if code != http.StatusOK || len(leads) != 1 || leads[0].(map[string]any)["id"] != id {
			t.Errorf("%s: %d %v, want the lead", f, code, body)
		}
		if code, body := get(stranger, f, ""); code != http.StatusOK || body["leads"] != nil {
			t.Errorf("another tenant's %s: %d %v, want no leads", f, code, body)
		}
	}
	for _, tt := range []struct{ filter, orderBy string }{
		{`email="not an e-mail"`, ""},
		{`displayName:"ada"`, ""},  // no trailing *
		{`displayName:"*"`, ""},    // nothing to search
		{`displayName:"-*"`, ""},   // nothing searchable
		{`displayName="ada*"`, ""}, // a search is ':'
		{`displayName:"a*" AND company:"b*"`, ""},
		{`displayName:"a*" AND tags:"vip"`, ""},
		{`displayName:"a*"`, "score desc"},
		{`externalId:"erp*"`, ""},
		{`externalId = "erp-ada" AND email = "ada@example.com"`, ""},
	} {
		if code, body := get(key, tt.filter, tt.orderBy); code != http.StatusBadRequest {
			t.Errorf("%s %s: %d %v, want 400", tt.filter, tt.orderBy, code, body)
		}
	}
	client, ctx := sys.marketing(key)
	if _, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{Filter: `email = "x"`}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC bad e-mail: %v, want InvalidArgument", err)
	}
}
