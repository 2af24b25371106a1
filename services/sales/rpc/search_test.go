package rpc_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/search/searchtest"
	"github.com/crmcycle/crm/pkg/servicetest"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// named is a created record and the plain form of the text search reads.
type named struct{ id, plain, email, owner string }

// pageAll pages through a list with filter and returns the ids in order.
func pageAll(t *testing.T, filter string, size int32, list func(filter, token string, size int32) ([]string, string, error)) []string {
	t.Helper()
	var out []string
	token := ""
	for pages := 0; ; pages++ {
		ids, next, err := list(filter, token, size)
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		out = append(out, ids...)
		if token = next; token == "" || pages > 10_000 {
			return out
		}
	}
}

// checkSearch compares every query's results with the independent computation on the plain texts.
func checkSearch(t *testing.T, records []named, lists [][]string, list func(filter, token string, size int32) ([]string, string, error)) {
	t.Helper()
	plain := make([]searchtest.Record, len(records))
	for i, r := range records {
		plain[i] = searchtest.Record{ID: r.id, Plain: r.plain}
	}
	searchtest.Check(t, "displayName", plain, lists, func(filter string, i int) []string {
		return pageAll(t, filter, []int32{1000, 1000, 71}[i%3], list)
	})
}

// TestAccountAndContactSearchAgainstAnIndependentComputation: accounts and contacts with names in
// random case and accents; every prefix finds exactly the records whose plain words start with it;
// e-mail lookups in any case; pairs narrow on the record.
func TestAccountAndContactSearchAgainstAnIndependentComputation(t *testing.T) {
	sys := startSystem(t, servicetest.OwnRedis)
	_, key := sys.NewKey(t, "", salesScopes...)
	client, ctx := sys.sales(key)
	n := servicetest.Size(2_500, 25_000)
	rng := rand.New(rand.NewPCG(1, 2))
	var accounts, contacts []named
	for i := range n {
		name := searchtest.Pick(rng, searchtest.Companies)
		owner := fmt.Sprintf("owner%d", i%3)
		a, err := client.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{DisplayName: name.Text, OwnerId: owner}})
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, named{id: a.GetAccount().GetId(), plain: name.Plain, owner: owner})
		given, family := searchtest.Pick(rng, searchtest.Given), searchtest.Pick(rng, searchtest.Family)
		email := fmt.Sprintf("C%05d@Example.com", i)
		c, err := client.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{
			Email: email, GivenName: given.Text, FamilyName: family.Text, OwnerId: owner}})
		if err != nil {
			t.Fatal(err)
		}
		contacts = append(contacts, named{id: c.GetContact().GetId(), plain: given.Plain + " " + family.Plain, email: strings.ToLower(email), owner: owner})
	}
	listAccounts := func(filter, token string, size int32) ([]string, string, error) {
		res, err := client.ListAccounts(ctx, &salesv1.ListAccountsRequest{Filter: filter, PageToken: token, PageSize: size})
		var ids []string
		for _, a := range res.GetAccounts() {
			ids = append(ids, a.GetId())
		}
		return ids, res.GetNextPageToken(), err
	}
	listContacts := func(filter, token string, size int32) ([]string, string, error) {
		res, err := client.ListContacts(ctx, &salesv1.ListContactsRequest{Filter: filter, PageToken: token, PageSize: size})
		var ids []string
		for _, c := range res.GetContacts() {
			ids = append(ids, c.GetId())
		}
		return ids, res.GetNextPageToken(), err
	}
	checkSearch(t, accounts, [][]string{searchtest.Companies}, listAccounts)
	checkSearch(t, contacts, [][]string{searchtest.Given, searchtest.Family}, listContacts)

	// A pair: the name search narrowed to one owner, against the same computation.
	var want []string
	for _, c := range contacts {
		if c.owner == "owner1" && searchtest.Matches(c.plain, "ad") {
			want = append(want, c.id)
		}
	}
	got := pageAll(t, `display_name:"AD*" AND owner_id = "owner1"`, 50, listContacts)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("name and owner: %d contacts, want %d", len(got), len(want))
	}
	for _, c := range contacts[:100] {
		if got := pageAll(t, fmt.Sprintf("email = %q", strings.ToUpper(c.email)), 10, listContacts); !slices.Equal(got, []string{c.id}) {
			t.Fatalf("email %s: %v, want %s", c.email, got, c.id)
		}
		other := map[string]string{"owner0": "owner1", "owner1": "owner2", "owner2": "owner0"}[c.owner]
		if got := pageAll(t, fmt.Sprintf("email = %q AND owner_id = %q", c.email, other), 10, listContacts); len(got) != 0 {
			t.Fatalf("email %s with another owner: %v, want none", c.email, got)
		}
	}
}

// TestContactIsFoundTheMomentItIsWrittenAndGoneWhenDeleted, over REST: created then at once
// found by name and e-mail; renamed, found by the new name only; deleted, found by neither; never
// by another tenant.
func TestContactIsFoundTheMomentItIsWrittenAndGoneWhenDeleted(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, stranger := sys.NewKey(t, "", salesScopes...)
	find := func(k, filter string) []string {
		r := sys.Do(t, http.MethodGet, "/v1/contacts?"+url.Values{"filter": {filter}}.Encode(), k, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", filter, r.Status, r.Body)
		}
		return ids(r.JSON(t), "contacts")
	}
	for i := range 200 {
		c := sys.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":"p%d@example.com","givenName":"Zoë","familyName":"Prøbe%d","ownerId":"u1"}`, i, i))
		id := str(c, "id")
		sys.leads.link(tenant, fmt.Sprintf("p%d@example.com", i), fmt.Sprintf("crm-%d", i))
		for _, f := range []string{fmt.Sprintf(`displayName:"zoe prøbe%d*"`, i), fmt.Sprintf(`email="P%d@EXAMPLE.com"`, i),
			fmt.Sprintf(`externalId = "crm-%d"`, i), fmt.Sprintf(`external_id = "crm-%d" AND owner_id = "u1"`, i)} {
			if got := find(key, f); !slices.Equal(got, []string{id}) {
				t.Fatalf("write %d: %s found %v, want %s", i, f, got, id)
			}
			if got := find(stranger, f); len(got) != 0 {
				t.Fatalf("another tenant's %s found %v", f, got)
			}
		}
		if i%50 != 0 {
			continue
		}
		sys.OK(t, http.MethodPatch, "/v1/contacts/"+id+"?updateMask=familyName", key, `{"familyName":"Renamed"}`)
		if got := find(key, fmt.Sprintf(`displayName:"zoe prøbe%d*"`, i)); len(got) != 0 {
			t.Fatalf("renamed: the old name finds %v", got)
		}
		if got := find(key, `displayName:"renamed*"`); !slices.Contains(got, id) {
			t.Fatalf("renamed: the new name finds %v, want %s among them", got, id)
		}
		sys.Do(t, http.MethodDelete, "/v1/contacts/"+id, key, nil)
		for _, f := range []string{fmt.Sprintf(`email="p%d@example.com"`, i), fmt.Sprintf(`externalId = "crm-%d"`, i)} {
			if got := find(key, f); len(got) != 0 {
				t.Fatalf("deleted: %s found %v", f, got)
			}
		}
	}
}
