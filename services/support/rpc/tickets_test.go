package rpc_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestSupportTicketsOverREST works a queue through the gateway: open, assign, reply, pend, solve,
// rate, list with filters and pages, update with a mask and etag, and every error code of each
// route.
func TestSupportTicketsOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	_, readOnly := sys.NewKey(t, tenant, "support.read")

	tk := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Cannot log in",
		"description":"Since this morning","priority":"TICKET_PRIORITY_URGENT","channel":"TICKET_CHANNEL_EMAIL","tags":["login"]}`)
	id := tk["id"].(string)
	if tk["status"] != "TICKET_STATUS_NEW" || tk["etag"] != "1" || tk["firstResponse"].(map[string]any)["target"] != "3600s" ||
		tk["resolution"].(map[string]any)["remaining"] == nil {
		t.Fatalf("created ticket = %v", tk)
	}
	if got := sys.Do(t, http.MethodGet, "/v1/tickets/"+id, key, nil); got.Status != http.StatusOK || got.JSON(t)["id"] != id {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}
	if len(sys.events(t, tenant, "support.ticket.created")) != 1 {
		t.Fatal("no support.ticket.created event")
	}

	// Assign (NEW -> OPEN), reply (stops the first-response clock), internal note, pend, open, solve.
	steps := []struct {
		method, path, body string
		code               int
		status             string
	}{
		{"POST", ":assign", `{"assigneeId":"agent-7"}`, 200, "TICKET_STATUS_OPEN"},
		{"POST", "/comments", `{"body":"Looking into it"}`, 200, ""},
		{"POST", "/comments", `{"body":"Probably SSO","internal":true}`, 200, ""},
		{"POST", ":pend", `{}`, 200, "TICKET_STATUS_PENDING"},
		{"POST", ":solve", `{}`, 400, ""}, // PENDING cannot be solved
		{"POST", ":open", `{}`, 200, "TICKET_STATUS_OPEN"},
		{"POST", ":hold", `{}`, 200, "TICKET_STATUS_ON_HOLD"},
		{"POST", ":open", `{}`, 200, "TICKET_STATUS_OPEN"},
		{"POST", ":rate", `{"score":5}`, 400, ""}, // not solved yet
		{"POST", ":solve", `{}`, 200, "TICKET_STATUS_SOLVED"},
		{"POST", ":rate", `{"score":4,"comment":"Fast"}`, 200, "TICKET_STATUS_SOLVED"},
		{"POST", ":rate", `{"score":5}`, 400, ""}, // once
		{"POST", ":reopen", `{}`, 200, "TICKET_STATUS_OPEN"},
		{"POST", ":solve", `{}`, 200, "TICKET_STATUS_SOLVED"},
		{"POST", ":close", `{}`, 200, "TICKET_STATUS_CLOSED"},
		{"POST", ":reopen", `{}`, 400, ""}, // CLOSED is final
		{"POST", "/comments", `{"body":"too late"}`, 400, ""},
		{"POST", ":assign", `{"assigneeId":"agent-8"}`, 400, ""},
	}
	for _, st := range steps {
		r := sys.Do(t, st.method, "/v1/tickets/"+id+st.path, key, []byte(st.body))
		if r.Status != st.code {
			t.Fatalf("%s %s: %d %s, want %d", st.path, st.body, r.Status, r.Body, st.code)
		}
		if st.code == 400 && r.ErrorStatus(t) != "FAILED_PRECONDITION" {
			t.Fatalf("%s: %s, want FAILED_PRECONDITION", st.path, r.Body)
		}
		if st.status != "" && r.JSON(t)["status"] != st.status {
			t.Fatalf("%s: status %v, want %s", st.path, r.JSON(t)["status"], st.status)
		}
	}
	got := sys.Do(t, http.MethodGet, "/v1/tickets/"+id, key, nil).JSON(t)
	if got["firstResponse"].(map[string]any)["metTime"] == nil || got["csat"].(map[string]any)["score"] != float64(4) || got["closeTime"] == nil {
		t.Fatalf("worked ticket = %v", got)
	}
	comments := sys.Do(t, http.MethodGet, "/v1/tickets/"+id+"/comments?pageSize=1", key, nil).JSON(t)
	more := sys.Do(t, http.MethodGet, "/v1/tickets/"+id+"/comments?pageToken="+comments["nextPageToken"].(string), key, nil).JSON(t)
	if c := comments["comments"].([]any); len(c) != 1 || c[0].(map[string]any)["body"] != "Looking into it" ||
		len(more["comments"].([]any)) != 1 || more["comments"].([]any)[0].(map[string]any)["internal"] != true {
		t.Fatalf("comments in order: %v then %v", comments, more)
	}
	for _, ev := range []string{"support.ticket.solved", "support.ticket.reopened", "support.ticket.closed", "support.csat.rated", "support.comment.added"} {
		if len(sys.events(t, tenant, ev)) == 0 {
			t.Errorf("no %s event", ev)
		}
	}

	// Update with a field mask and etag.
	second := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Slow","priority":"TICKET_PRIORITY_LOW"}`)["id"].(string)
	upd := sys.Do(t, http.MethodPatch, "/v1/tickets/"+second+"?updateMask=subject,priority", key,
		[]byte(`{"subject":"Very slow","priority":"TICKET_PRIORITY_HIGH","description":"ignored","etag":"1"}`))
	if u := upd.JSON(t); upd.Status != 200 || u["subject"] != "Very slow" || u["priority"] != "TICKET_PRIORITY_HIGH" ||
		u["description"] != nil || u["etag"] != "2" || u["firstResponse"].(map[string]any)["target"] != "14400s" {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	if r := sys.Do(t, http.MethodPatch, "/v1/tickets/"+second+"?updateMask=subject", key, []byte(`{"subject":"x","etag":"1"}`)); r.Status != 409 || r.ErrorStatus(t) != "ABORTED" {
		t.Fatalf("stale etag: %d %s, want 409 ABORTED", r.Status, r.Body)
	}
	// Without updateMask, an empty body has nothing to change: the ticket as it is, same etag.
	if r := sys.Do(t, http.MethodPatch, "/v1/tickets/"+second, key, []byte(`{}`)); r.Status != 200 || r.JSON(t)["etag"] != "2" || r.JSON(t)["subject"] != "Very slow" {
		t.Fatalf("PATCH {}: %d %s, want the ticket unchanged at etag 2", r.Status, r.Body)
	}

	// Lists: newest first, by filter, in pages.
	third := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"Third"}`)["id"].(string)
	page1 := sys.Do(t, http.MethodGet, "/v1/tickets?pageSize=2", key, nil).JSON(t)
	page2 := sys.Do(t, http.MethodGet, "/v1/tickets?pageSize=2&pageToken="+page1["nextPageToken"].(string), key, nil).JSON(t)
	var ids []string
	for _, p := range []map[string]any{page1, page2} {
		for _, c := range p["tickets"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
	}
	if !slices.Equal(ids, []string{third, second, id}) || page2["nextPageToken"] != nil {
		t.Fatalf("pages = %v, want [%s %s %s] and no more", ids, third, second, id)
	}
	// A page size above the maximum is lowered to it (AIP-158), not refused.
	if r := sys.Do(t, http.MethodGet, "/v1/tickets?pageSize=1001", key, nil); r.Status != http.StatusOK || len(r.JSON(t)["tickets"].([]any)) != 3 {
		t.Fatalf("pageSize=1001: %d %s, want 200 and the 3 tickets", r.Status, r.Body)
	}
	for filter, want := range map[string][]string{
		"status = TICKET_STATUS_CLOSED":           {id},
		"priority = TICKET_PRIORITY_HIGH":         {second},
		`assignee_id = "agent-7"`:                 {id},
		`customer_id = "` + supportCustomer + `"`: {third, second, id},
		"sla_breached = true":                     nil,
		"status = TICKET_STATUS_NEW":              {third, second},
		`priority = "TICKET_PRIORITY_URGENT"`:     {id},
	} {
		r := sys.Do(t, http.MethodGet, "/v1/tickets?filter="+url.QueryEscape(filter), key, nil)
		var got []string
		list, _ := r.JSON(t)["tickets"].([]any)
		for _, c := range list {
			got = append(got, c.(map[string]any)["id"].(string))
		}
		if r.Status != 200 || !slices.Equal(got, want) {
			t.Errorf("filter %q: %d %v, want %v", filter, r.Status, got, want)
		}
	}

	// Every error code of the ticket routes.
	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b663"
	for _, c := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"no key", "GET", "/v1/tickets/" + id, "", "", 401, "UNAUTHENTICATED", ""},
		{"read-only key writes", "POST", "/v1/tickets", readOnly, `{"customerId":"` + supportCustomer + `","subject":"x"}`, 403, "PERMISSION_DENIED", ""},
		{"bad customer", "POST", "/v1/tickets", key, `{"customerId":"nope","subject":"x"}`, 400, "INVALID_ARGUMENT", "ticket.customerId"},
		{"no subject", "POST", "/v1/tickets", key, `{"customerId":"` + supportCustomer + `"}`, 400, "INVALID_ARGUMENT", "ticket.subject"},
		{"bad priority", "POST", "/v1/tickets", key, `{"customerId":"` + supportCustomer + `","subject":"x","priority":"TICKET_PRIORITY_HUGE"}`, 400, "INVALID_ARGUMENT", ""},
		{"unknown field", "POST", "/v1/tickets", key, `{"customerId":"` + supportCustomer + `","subject":"x","color":"red"}`, 400, "INVALID_ARGUMENT", ""},
		{"bad id", "GET", "/v1/tickets/xyz", key, "", 400, "INVALID_ARGUMENT", "id"},
		{"unknown ticket", "GET", "/v1/tickets/" + unknown, key, "", 404, "NOT_FOUND", ""},
		{"unknown ticket move", "POST", "/v1/tickets/" + unknown + ":solve", key, `{}`, 404, "NOT_FOUND", ""},
		{"unknown ticket comment", "POST", "/v1/tickets/" + unknown + "/comments", key, `{"body":"x"}`, 404, "NOT_FOUND", ""},
		{"unknown ticket comments", "GET", "/v1/tickets/" + unknown + "/comments", key, "", 404, "NOT_FOUND", ""},
		{"unknown ticket update", "PATCH", "/v1/tickets/" + unknown + "?updateMask=subject", key, `{"subject":"x"}`, 404, "NOT_FOUND", ""},
		{"empty comment", "POST", "/v1/tickets/" + second + "/comments", key, `{"body":""}`, 400, "INVALID_ARGUMENT", "comment.body"},
		{"no assignee", "POST", "/v1/tickets/" + second + ":assign", key, `{}`, 400, "INVALID_ARGUMENT", "assigneeId"},
		{"rating out of range", "POST", "/v1/tickets/" + second + ":rate", key, `{"score":6}`, 400, "INVALID_ARGUMENT", "score"},
		{"mask outside the updatable", "PATCH", "/v1/tickets/" + second + "?updateMask=status", key, `{"status":"TICKET_STATUS_SOLVED"}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"update empties the subject", "PATCH", "/v1/tickets/" + second + "?updateMask=subject", key, `{"subject":""}`, 400, "INVALID_ARGUMENT", "ticket.subject"},
		{"unsupported filter", "GET", "/v1/tickets?filter=" + url.QueryEscape("subject = x"), key, "", 400, "INVALID_ARGUMENT", "filter"},
		{"bad filter value", "GET", "/v1/tickets?filter=" + url.QueryEscape("status = OPEN"), key, "", 400, "INVALID_ARGUMENT", "filter"},
		{"forged page token", "GET", "/v1/tickets?pageToken=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", key, "", 400, "INVALID_ARGUMENT", ""},
		{"token of another filter", "GET", "/v1/tickets?filter=" + url.QueryEscape("status = TICKET_STATUS_NEW") + "&pageToken=" + page1["nextPageToken"].(string), key, "", 400, "INVALID_ARGUMENT", ""},
		{"negative page size", "GET", "/v1/tickets?pageSize=-1", key, "", 400, "INVALID_ARGUMENT", "pageSize"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := sys.Do(t, c.method, c.path, c.key, []byte(c.body))
			if r.Status != c.code || r.ErrorStatus(t) != c.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, c.code, c.status)
			}
			if c.field != "" && !slices.Contains(r.FieldViolations(t), c.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), c.field)
			}
		})
	}
}
