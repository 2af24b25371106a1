package rpc_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/servicetest"
)

// TestTicketFilterForms: ListTickets takes the one AIP-160 grammar, field names in proto or
// JSON case, and refuses what its indexes cannot serve with INVALID_ARGUMENT naming the field.
func TestTicketFilterForms(t *testing.T) {
	const product = "0192f3a0-0000-7000-8000-00000000d001"
	products := &fakeProduct{products: map[string]bool{product: true}, grants: map[string]string{supportCustomer + "/" + product: "g"}}
	sys := startSystem(t, func(o *servicetest.Options) { o.Fakes = append(o.Fakes, products.register) })
	_, key := sys.NewKey(t, "", append(supportScopes, "product.read")...)
	assigned := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Assigned","priority":"TICKET_PRIORITY_HIGH"}`)["id"].(string)
	other := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Other","productId":"`+product+`"}`)["id"].(string)
	if r := sys.Do(t, http.MethodPost, "/v1/tickets/"+assigned+":assign", key, []byte(`{"assigneeId":"agent 7"}`)); r.Status != http.StatusOK {
		t.Fatalf("assign: %d %s", r.Status, r.Body)
	}

	for _, c := range []struct {
		filter string
		want   []string
	}{
		{`assigneeId = "agent 7"`, []string{assigned}},
		{`assignee_id = "agent 7"`, []string{assigned}},
		{`productId = "` + strings.ToUpper(product) + `"`, []string{other}},
		{`customerId = "` + supportCustomer + `"`, []string{other, assigned}},
		{`priority = TICKET_PRIORITY_HIGH`, []string{assigned}},
		{`(status = TICKET_STATUS_NEW)`, []string{other}},
		{`slaBreached = true`, nil},
		{`sla_breached != false`, nil},
	} {
		r := sys.Do(t, http.MethodGet, "/v1/tickets?filter="+url.QueryEscape(c.filter), key, nil)
		var got []string
		list, _ := r.JSON(t)["tickets"].([]any)
		for _, tk := range list {
			got = append(got, tk.(map[string]any)["id"].(string))
		}
		if r.Status != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("filter %q: got %d %v, want %v", c.filter, r.Status, got, c.want)
		}
	}

	for _, c := range []struct{ filter, names string }{
		{`subject = "Other"`, "subject"},
		{`status != TICKET_STATUS_NEW`, "status"},
		{`sla_breached = false`, "sla_breached"},
		{`status = TICKET_STATUS_NEW AND priority = TICKET_PRIORITY_HIGH`, "priority cannot be combined with status"},
		{`status = TICKET_STATUS_NEW OR status = TICKET_STATUS_OPEN`, "OR"},
		{`customer_id = "nope"`, "customer_id"},
		{`assignee_id = "` + strings.Repeat("a", 129) + `"`, "assignee_id"},
	} {
		r := sys.Do(t, http.MethodGet, "/v1/tickets?filter="+url.QueryEscape(c.filter), key, nil)
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "filter") || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("filter %q: got %d %s, want 400 with a violation on filter naming %q", c.filter, r.Status, r.Body, c.names)
		}
	}
}
