package rpc_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestSupportConfigOverREST: SLA policies, settings, NPS answers, statistics and the sweep through
// the gateway, the happy path and each error code.
func TestSupportConfigOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	_, readOnly := sys.NewKey(t, tenant, "support.read")

	policies := sys.Do(t, http.MethodGet, "/v1/slaPolicies", readOnly, nil)
	if list, _ := policies.JSON(t)["slaPolicies"].([]any); policies.Status != 200 || len(list) != 4 ||
		list[3].(map[string]any)["priority"] != "TICKET_PRIORITY_URGENT" || list[3].(map[string]any)["firstResponseTarget"] != "3600s" {
		t.Fatalf("policies: %d %s", policies.Status, policies.Body)
	}
	upd := sys.Do(t, http.MethodPatch, "/v1/slaPolicies/TICKET_PRIORITY_URGENT?updateMask=firstResponseTarget", key,
		[]byte(`{"firstResponseTarget":"1800s","resolutionTarget":"60s","etag":"0"}`))
	if p := upd.JSON(t); upd.Status != 200 || p["firstResponseTarget"] != "1800s" || p["resolutionTarget"] != "14400s" || p["etag"] != "1" {
		t.Fatalf("update policy: %d %s", upd.Status, upd.Body)
	}
	tk := sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"x","priority":"TICKET_PRIORITY_URGENT"}`)
	if tk["firstResponse"].(map[string]any)["target"] != "1800s" {
		t.Fatalf("ticket after the policy change = %v", tk)
	}

	settings := sys.Do(t, http.MethodGet, "/v1/support/settings", readOnly, nil)
	if settings.Status != 200 || settings.JSON(t)["autoCloseDays"] != float64(4) || settings.JSON(t)["etag"] != "0" {
		t.Fatalf("settings: %d %s", settings.Status, settings.Body)
	}
	if r := sys.Do(t, http.MethodPatch, "/v1/support/settings", key, []byte(`{"autoCloseDays":2,"etag":"0"}`)); r.Status != 200 || r.JSON(t)["autoCloseDays"] != float64(2) {
		t.Fatalf("update settings: %d %s", r.Status, r.Body)
	}
	// A partial PATCH: the merged settings are validated, so the absent autoCloseDays is kept, not
	// refused as 0.
	hours := `{"businessHours":{"timeZone":"Europe/Paris","startHour":9,"endHour":17,"days":[1,2,3,4,5]},"etag":"1"}`
	if r := sys.Do(t, http.MethodPatch, "/v1/support/settings?updateMask=businessHours", key, []byte(hours)); r.Status != 200 ||
		r.JSON(t)["autoCloseDays"] != float64(2) || r.JSON(t)["businessHours"].(map[string]any)["timeZone"] != "Europe/Paris" {
		t.Fatalf("update business hours alone: %d %s", r.Status, r.Body)
	}
	if r := sys.Do(t, http.MethodPatch, "/v1/support/settings?updateMask=autoCloseDays", key, []byte(`{"etag":"2"}`)); r.Status != 400 ||
		!strings.Contains(string(r.Body), "settings.autoCloseDays") {
		t.Fatalf("clearing autoCloseDays: %d %s, want 400 on the merged settings' autoCloseDays", r.Status, r.Body)
	}

	for _, score := range []string{"10", "9", "8", "3"} {
		r := sys.Do(t, http.MethodPost, "/v1/npsResponses", key, []byte(`{"customerId":"`+supportCustomer+`","score":`+score+`,"comment":"ok"}`))
		if r.Status != 200 || r.JSON(t)["category"] == nil {
			t.Fatalf("nps %s: %d %s", score, r.Status, r.Body)
		}
	}
	if evs := sys.events(t, tenant, "support.nps.recorded"); len(evs) != 4 || evs[0].GetCustomerId() != supportCustomer {
		t.Fatalf("%d nps events, want 4 with the customer", len(evs))
	}
	stats := sys.Do(t, http.MethodGet, "/v1/support/stats", readOnly, nil).JSON(t)
	if stats["npsPromoters"] != "2" || stats["npsDetractors"] != "1" || stats["nps"] != float64(25) || stats["ticketsCreated"] != "1" || stats["backlogTotal"] != "1" {
		t.Fatalf("stats = %v", stats)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/tickets:sweep", key, []byte(`{}`)); r.Status != 200 {
		t.Fatalf("sweep: %d %s", r.Status, r.Body)
	}

	for _, c := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"policies without key", "GET", "/v1/slaPolicies", "", "", 401, "UNAUTHENTICATED", ""},
		{"policy with a read-only key", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_LOW", readOnly, `{"firstResponseTarget":"600s"}`, 403, "PERMISSION_DENIED", ""},
		{"policy of no priority", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_UNSPECIFIED", key, `{"firstResponseTarget":"600s"}`, 400, "INVALID_ARGUMENT", "slaPolicy.priority"},
		{"policy of an unknown priority", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_HUGE", key, `{"firstResponseTarget":"600s"}`, 400, "INVALID_ARGUMENT", ""},
		{"policy target too short", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_LOW?updateMask=firstResponseTarget", key, `{"firstResponseTarget":"5s"}`, 400, "INVALID_ARGUMENT", "slaPolicy.firstResponseTarget"},
		{"policy resolution before response", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_LOW", key, `{"firstResponseTarget":"7200s","resolutionTarget":"3600s"}`, 400, "INVALID_ARGUMENT", "slaPolicy.resolutionTarget"},
		{"policy mask naming an output-only field", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_LOW?updateMask=updateTime", key, `{}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"policy stale etag", "PATCH", "/v1/slaPolicies/TICKET_PRIORITY_URGENT?updateMask=firstResponseTarget", key, `{"firstResponseTarget":"600s","etag":"0"}`, 409, "ABORTED", ""},
		{"settings without key", "GET", "/v1/support/settings", "", "", 401, "UNAUTHENTICATED", ""},
		{"settings with a read-only key", "PATCH", "/v1/support/settings", readOnly, `{"autoCloseDays":3}`, 403, "PERMISSION_DENIED", ""},
		{"settings out of range", "PATCH", "/v1/support/settings", key, `{"autoCloseDays":400}`, 400, "INVALID_ARGUMENT", "settings.autoCloseDays"},
		{"settings unknown time zone", "PATCH", "/v1/support/settings", key, `{"autoCloseDays":3,"businessHours":{"timeZone":"Mars/Olympus","startHour":9,"endHour":17,"days":[1]}}`, 400, "INVALID_ARGUMENT", "settings.businessHours.timeZone"},
		{"settings hours inverted", "PATCH", "/v1/support/settings", key, `{"autoCloseDays":3,"businessHours":{"startHour":17,"endHour":9,"days":[1]}}`, 400, "INVALID_ARGUMENT", "settings.businessHours"},
		{"settings day 8", "PATCH", "/v1/support/settings", key, `{"autoCloseDays":3,"businessHours":{"startHour":9,"endHour":17,"days":[8]}}`, 400, "INVALID_ARGUMENT", "settings.businessHours.days[0]"},
		{"settings stale etag", "PATCH", "/v1/support/settings", key, `{"autoCloseDays":3,"etag":"0"}`, 409, "ABORTED", ""},
		{"nps without key", "POST", "/v1/npsResponses", "", `{"customerId":"` + supportCustomer + `","score":5}`, 401, "UNAUTHENTICATED", ""},
		{"nps with a read-only key", "POST", "/v1/npsResponses", readOnly, `{"customerId":"` + supportCustomer + `","score":5}`, 403, "PERMISSION_DENIED", ""},
		{"nps score out of range", "POST", "/v1/npsResponses", key, `{"customerId":"` + supportCustomer + `","score":11}`, 400, "INVALID_ARGUMENT", "npsResponse.score"},
		{"nps bad customer", "POST", "/v1/npsResponses", key, `{"customerId":"someone","score":5}`, 400, "INVALID_ARGUMENT", "npsResponse.customerId"},
		{"stats without key", "GET", "/v1/support/stats", "", "", 401, "UNAUTHENTICATED", ""},
		{"sweep with a read-only key", "POST", "/v1/tickets:sweep", readOnly, `{}`, 403, "PERMISSION_DENIED", ""},
		{"sweep without key", "POST", "/v1/tickets:sweep", "", `{}`, 401, "UNAUTHENTICATED", ""},
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
