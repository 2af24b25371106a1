package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/redis/go-redis/v9"
)

// walkWorld holds the ids the walk's requests create and later requests use.
type walkWorld map[string]string

// walkStep is how the walk calls one route: its path parameters (by name, from the world), query,
// body, and the ids its answer gives the world (world name → top-level or dotted JSON path).
type walkStep struct {
	op      string // the OpenAPI operationId, e.g. "SalesService_CreateAccount"
	params  func(w walkWorld) map[string]string
	query   string
	body    func(w walkWorld) string
	capture map[string]string
	// before runs first: a wait the route needs (for a reaction on the bus, a delivery).
	before func(t *testing.T, sys *system, w walkWorld)
	// contentType is the body's when not JSON (an import's CSV file).
	contentType string
	// method is the gRPC method the audit entry names, when the operationId does not say it (the
	// operations routes, which the gateway sends to the service the name carries).
	method string
}

// noAuditEvent are the mutating-looking routes that write no event, each with why. The walk calls
// them too and checks that the audit log has nothing under their request ids.
var noAuditEvent = map[string]string{
	"MarketingService_ResolveCustomer":  "a lookup (POST for its body): it registers nobody unless create is set, and the walk does not set it",
	"MarketingService_ResolveCustomers": "the batch of the same lookup",
	"ProductService_QuoteLineItems":     "prices lines from the catalog: a read",
	"ProductService_SweepRenewals":      "renews and expires only the subscriptions that are due; none is due during the walk",
	"SupportService_SweepTickets":       "closes only the solved tickets whose auto-close time passed; none has during the walk",
	"Operations_CancelOperation":        "cancels only a running operation; the walk's import is done, and cancelling it changes nothing",
}

func ids(keys ...string) func(walkWorld) map[string]string {
	return func(w walkWorld) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			name, from, ok := strings.Cut(k, "=")
			if !ok {
				from = name
			}
			m[name] = w[from]
		}
		return m
	}
}

func body(format string, keys ...string) func(walkWorld) string {
	return func(w walkWorld) string {
		args := make([]any, len(keys))
		for i, k := range keys {
			args[i] = w[k]
		}
		return fmt.Sprintf(format, args...)
	}
}

// walkSteps are the fixtures, in the order the walk calls them. A route of the OpenAPI document
// that is neither here nor in noAuditEvent fails the walk.
func walkSteps() []walkStep {
	empty := body(`{}`)
	return []walkStep{
		// Integration first: the endpoint's deliveries are retried at the end.
		{op: "IntegrationService_UpdateIntegrationSettings", body: body(`{"auditRetentionDays":400}`)},
		{op: "IntegrationService_CreateWebhookEndpoint", body: body(`{"url":%q,"eventTypes":["sales.account.*"]}`, "receiver"), capture: map[string]string{"endpoint": "id"}},
		{op: "IntegrationService_UpdateWebhookEndpoint", params: ids("id=endpoint"), query: "updateMask=description", body: body(`{"description":"the walk"}`)},
		{op: "IntegrationService_RotateWebhookSecret", params: ids("id=endpoint"), body: body(`{"overlapSeconds":60}`)},
		{op: "IntegrationService_TestWebhookEndpoint", params: ids("id=endpoint"), body: empty},
		{op: "IntegrationService_CreateApiKey", body: body(`{"displayName":"walk","scopes":["sales.read"]}`), capture: map[string]string{"apiKey": "apiKey.id"}},
		{op: "IntegrationService_RotateApiKey", params: ids("id=apiKey"), body: body(`{"overlapSeconds":0}`)},
		{op: "IntegrationService_RevokeApiKey", params: ids("id=apiKey"), body: empty},

		// Product: the catalog the deals and subscriptions use.
		{op: "ProductService_CreateProduct", body: body(productBody("WALK-1", "Walk suite", "BILLING_PERIOD_MONTHLY")), capture: map[string]string{"product": "id"}},
		{op: "ProductService_UpdateProduct", params: ids("id=product"), query: "updateMask=description", body: body(`{"description":"walked"}`)},
		{op: "ProductService_CreateProduct", body: body(productBody("WALK-2", "Walk extra", "BILLING_PERIOD_MONTHLY")), capture: map[string]string{"product2": "id"}},
		{op: "ProductService_ArchiveProduct", params: ids("id=product2"), body: empty},
		{op: "ProductService_ImportProducts", contentType: "text/csv", body: body("sku,displayName,price,billingPeriod\nWALK-IMP,Walk import,10.00 EUR,MONTHLY\n")},
		{op: "ProductService_QuoteLineItems", body: body(`{"currencyCode":"EUR","items":[{"productId":%q,"quantity":1}]}`, "product")},

		// Marketing.
		{op: "MarketingService_CreateCampaign", body: body(`{"displayName":"Walk","channel":"CHANNEL_EMAIL"}`), capture: map[string]string{"campaign": "id"}},
		{op: "MarketingService_UpdateCampaign", params: ids("id=campaign"), query: "updateMask=displayName", body: body(`{"displayName":"Walk 2"}`)},
		{op: "MarketingService_LaunchCampaign", params: ids("id=campaign"), body: empty},
		{op: "MarketingService_PauseCampaign", params: ids("id=campaign"), body: empty},
		{op: "MarketingService_CompleteCampaign", params: ids("id=campaign"), body: empty},
		{op: "MarketingService_CaptureLead", body: body(`{"email":"walk-a@example.com","channel":"CHANNEL_WEB"}`), capture: map[string]string{"lead": "id", "customer": "customerId"}},
		{op: "MarketingService_UpdateLead", params: ids("id=lead"), query: "updateMask=company", body: body(`{"company":"Walk Ltd"}`)},
		{op: "MarketingService_RecordEngagement", params: ids("leadId=lead"), body: body(`{"type":"ENGAGEMENT_TYPE_EMAIL_OPEN"}`)},
		{op: "MarketingService_QualifyLead", params: ids("id=lead"), body: empty},
		{op: "MarketingService_BatchCreateLeads", body: body(`{"requests":[{"lead":{"email":"walk-b@example.com"}},{"lead":{"email":"walk-c@example.com"}}]}`),
			capture: map[string]string{"leadB": "results.0.lead.id", "leadC": "results.1.lead.id", "customerB": "results.0.lead.customerId"}},
		{op: "MarketingService_DisqualifyLead", params: ids("id=leadB"), body: body(`{"reason":"walked away"}`)},
		{op: "MarketingService_DeleteLead", params: ids("id=leadC")},
		{op: "MarketingService_CaptureLead", body: body(`{"email":"walk-e@example.com"}`), capture: map[string]string{"customerE": "customerId"}},
		{op: "MarketingService_EraseCustomer", params: ids("customerId=customerE"), body: empty},
		{op: "MarketingService_MoveLifecycleStage", params: ids("customerId=customer"), body: body(`{"stage":"LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER","cause":"walk"}`)},
		{op: "MarketingService_SetCustomerAtRisk", params: ids("customerId=customer"), body: body(`{"reason":"walk"}`)},
		{op: "MarketingService_ClearCustomerAtRisk", params: ids("customerId=customer"), body: body(`{"reason":"walk"}`)},
		{op: "MarketingService_CreditPoints", params: ids("customerId=customer"), body: body(`{"points":"100","reason":"walk"}`)},
		{op: "MarketingService_RedeemPoints", params: ids("customerId=customer"), body: body(`{"points":"10","reward":"mug"}`)},
		{op: "MarketingService_CreateReferralCode", params: ids("customerId=customer"), body: empty},
		// An import writes its rows' events under the request's id; cancelling the (done) import
		// changes nothing and records nothing.
		{op: "MarketingService_ImportLeads", contentType: "text/csv", body: body("email,givenName\nwalk-imp@example.com,Imp\n"),
			capture: map[string]string{"leadImport": "name"}},
		{op: "Operations_CancelOperation", method: "/crm.marketing.v1.MarketingService/CancelOperation", body: empty,
			params: func(w walkWorld) map[string]string {
				return map[string]string{"name": strings.TrimPrefix(w["leadImport"], "operations/")}
			}},
		{op: "MarketingService_ResolveCustomer", body: body(`{"email":"walk-a@example.com"}`)},
		{op: "MarketingService_ResolveCustomers", body: body(`{"requests":[{"email":"walk-a@example.com"}]}`)},
		{op: "MarketingService_UpdateLoyaltyProgram", query: "updateMask=pointsPerUnit", body: body(`{"pointsPerUnit":"2"}`)},
		{op: "MarketingService_UpdateScoringRules", query: "updateMask=mqlThreshold", body: body(`{"mqlThreshold":40}`)},
		{op: "MarketingService_UpdateLifecycleSettings", query: "updateMask=churnWindowDays", body: body(`{"churnWindowDays":90}`)},
		{op: "MarketingService_CreateSegment", body: body(`{"displayName":"Walkers","rule":{"minScore":1}}`), capture: map[string]string{"segment": "id"}},
		{op: "MarketingService_DeleteSegment", params: ids("id=segment")},

		// Sales.
		{op: "SalesService_ConvertLead", params: ids("leadId=lead"), body: body(`{"opportunity":{"displayName":"Walk deal","currencyCode":"EUR"}}`),
			capture: map[string]string{"opportunity": "opportunity.id", "contact": "contact.id"}},
		{op: "SalesService_CreateAccount", body: body(`{"displayName":"Walk Inc"}`), capture: map[string]string{"account": "id"}},
		{op: "SalesService_UpdateAccount", params: ids("id=account"), query: "updateMask=industry", body: body(`{"industry":"software"}`)},
		{op: "SalesService_CreateContact", body: body(`{"email":"walk-d@example.com","accountId":%q}`, "account"), capture: map[string]string{"contactD": "id"}},
		{op: "SalesService_UpdateContact", params: ids("id=contactD"), query: "updateMask=givenName", body: body(`{"givenName":"Dee"}`)},
		{op: "SalesService_BatchCreateContacts", body: body(`{"requests":[{"contact":{"email":"walk-e@example.com"}}]}`)},
		{op: "SalesService_DeleteContact", params: ids("id=contactD")},
		{op: "SalesService_ImportContacts", contentType: "text/csv", body: body("email,givenName\nwalk-imp-c@example.com,Imc\n")},
		{op: "SalesService_ImportAccounts", contentType: "text/csv", body: body("displayName,domain\nWalk Import Inc,walk-import.example\n")},
		{op: "SalesService_CreateActivity", body: body(`{"type":"ACTIVITY_TYPE_TASK","subject":"Walk call","ownerId":"walker","dueTime":"2026-01-05T09:00:00Z","accountId":%q}`, "account"), capture: map[string]string{"activity": "id"}},
		{op: "SalesService_CompleteActivity", params: ids("id=activity"), body: empty},
		{op: "SalesService_CreatePipeline", body: body(`{"displayName":"Walk","stages":[
			{"id":"OPEN_UP","probability":10,"forecastCategory":"FORECAST_CATEGORY_PIPELINE","outcome":"STAGE_OUTCOME_OPEN"},
			{"id":"CLOSED_WON","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},
			{"id":"CLOSED_LOST","probability":0,"forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`), capture: map[string]string{"pipeline": "id"}},
		{op: "SalesService_UpdatePipeline", params: ids("id=pipeline"), query: "updateMask=displayName", body: body(`{"displayName":"Walk 2"}`)},
		{op: "SalesService_CreateOpportunity", body: body(`{"displayName":"Walk opp","currencyCode":"EUR","accountId":%q}`, "account"), capture: map[string]string{"opportunity2": "id"}},
		{op: "SalesService_UpdateOpportunity", params: ids("id=opportunity2"), query: "updateMask=displayName", body: body(`{"displayName":"Walk opp 2"}`)},
		{op: "SalesService_MoveOpportunityStage", params: ids("id=opportunity2"), body: body(`{"stage":"QUALIFICATION"}`)},
		{op: "SalesService_LoseOpportunity", params: ids("id=opportunity2"), body: body(`{"reason":"price"}`)},
		{op: "SalesService_AddLineItem", params: ids("opportunityId=opportunity"), body: body(`{"productId":%q,"quantity":1}`, "product")},
		{op: "SalesService_WinOpportunity", params: ids("id=opportunity"), body: empty},
		{op: "SalesService_CreateOrder", body: body(`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":1}]}`, "customer", "product")},
		{op: "SalesService_DeleteAccount", params: ids("id=account")},

		// Product: the won deal's subscription.
		{op: "ProductService_RecordUsage", params: ids("subscriptionId=subscription"), body: body(`{"feature":"reports","quantity":"1","userId":"walker"}`),
			before: func(t *testing.T, sys *system, w walkWorld) { w["subscription"] = waitSubscription(t, sys, w) }},
		{op: "ProductService_RenewSubscription", params: ids("id=subscription"), body: empty},
		{op: "ProductService_CancelSubscription", params: ids("id=subscription"), body: body(`{"atPeriodEnd":true}`)},
		{op: "ProductService_SweepRenewals", body: empty},

		// Support.
		{op: "SupportService_UpdateSupportSettings", query: "updateMask=autoCloseDays", body: body(`{"autoCloseDays":5}`)},
		{op: "SupportService_UpdateSlaPolicy", params: func(walkWorld) map[string]string { return map[string]string{"priority": "TICKET_PRIORITY_LOW"} },
			query: "updateMask=firstResponseTarget", body: body(`{"firstResponseTarget":"7200s"}`)},
		{op: "SupportService_CreateTicket", body: body(`{"customerId":%q,"subject":"Walk ticket","priority":"TICKET_PRIORITY_LOW"}`, "customer"), capture: map[string]string{"ticket": "id"}},
		{op: "SupportService_UpdateTicket", params: ids("id=ticket"), query: "updateMask=subject", body: body(`{"subject":"Walk ticket 2"}`)},
		{op: "SupportService_AssignTicket", params: ids("id=ticket"), body: body(`{"assigneeId":"agent-walk"}`)},
		{op: "SupportService_AddComment", params: ids("ticketId=ticket"), body: body(`{"body":"On it.","internal":false}`)},
		{op: "SupportService_PendTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_OpenTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_HoldTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_OpenTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_SolveTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_RateTicket", params: ids("id=ticket"), body: body(`{"score":5}`)},
		{op: "SupportService_ReopenTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_SolveTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_CloseTicket", params: ids("id=ticket"), body: empty},
		{op: "SupportService_RecordNpsResponse", body: body(`{"customerId":%q,"score":9}`, "customer")},
		{op: "SupportService_SweepTickets", body: empty},

		// Marketing's merge last (the customer's other records are done), then the endpoint's
		// delivered account event is sent again, and the endpoint goes.
		{op: "MarketingService_MergeCustomers", params: ids("customerId=customer"), body: body(`{"mergedCustomerId":%q}`, "customerB")},
		{op: "IntegrationService_RetryDelivery", params: ids("endpointId=endpoint", "id=delivery"), body: empty,
			before: func(t *testing.T, sys *system, w walkWorld) { w["delivery"] = waitDelivered(t, sys, w) }},
		{op: "IntegrationService_DeleteWebhookEndpoint", params: ids("id=endpoint")},
	}
}

func waitSubscription(t *testing.T, sys *system, w walkWorld) string {
	subs := waitFor(t, "the won deal's subscription", func() []map[string]any { return sys.subscriptionsOf(t, w["key"], w["customer"]) },
		func(s []map[string]any) bool { return len(s) > 0 })
	return str(subs[0], "id")
}

func waitDelivered(t *testing.T, sys *system, w walkWorld) string {
	return waitFor(t, "a delivered account event", func() string {
		d := sys.ok(t, http.MethodGet, "/v1/webhookEndpoints/"+w["endpoint"]+"/deliveries?filter="+url.QueryEscape(`state = DELIVERY_STATE_DELIVERED`), w["key"], "")
		list, _ := d["deliveries"].([]any)
		if len(list) == 0 {
			return ""
		}
		return str(list[0].(map[string]any), "id")
	}, func(id string) bool { return id != "" })
}

// jsonPath reads a dotted path ("results.0.lead.id") of a decoded JSON answer.
func jsonPath(v any, path string) string {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	s, _ := v.(string)
	return s
}

// walkRoute is one mutating operation of the OpenAPI document.
type walkRoute struct {
	method, path string
	// ifMatch: the operation takes If-Match.
	ifMatch bool
}

// mutatingRoutes reads the OpenAPI document the gateway serves: every POST, PATCH, PUT and DELETE
// operation, by operationId.
func mutatingRoutes(t *testing.T, sys *system) map[string]walkRoute {
	t.Helper()
	r := sys.do(t, http.MethodGet, "/openapi.json", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", r.status)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Ref string `json:"$ref"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]walkRoute{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			switch method {
			case "post", "patch", "put", "delete":
				route := walkRoute{method: strings.ToUpper(method), path: path}
				for _, p := range op.Parameters {
					route.ifMatch = route.ifMatch || p.Ref == "#/components/parameters/IfMatch"
				}
				out[op.OperationID] = route
			}
		}
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// TestEveryMutatingRouteIsAudited walks every mutating route of the OpenAPI document through the
// real gateway and services, each with its own X-Request-Id, and finds each one's entry in the
// audit log by request id: the calling key as actor, the route's gRPC method, the request id. A
// route without a fixture fails the walk (add it to walkSteps, or to noAuditEvent with the
// reason it writes nothing); the routes of noAuditEvent must leave nothing under their request
// ids. Another tenant's admin sees none of it.
//
// A route that takes If-Match is first sent with a stale one: the gateway puts it in the request's
// etag and the service finds it in its write, so the answer is 412 with status ABORTED and the
// ErrorInfo reason ETAG_MISMATCH of the route's service, and it writes nothing (no audit entry
// under its request id). The real call then carries the resource's current ETag.
func TestEveryMutatingRouteIsAudited(t *testing.T) {
	walkEveryMutatingRoute(t, startSystem(t, allowPrivateWebhooks))
}

// TestEveryMutatingRouteIsAuditedOnACluster walks the same routes with the suite on a real
// 3-master Redis Cluster: every write, its reactions and its audit entry keep to one hash slot
// where they must (a CROSSSLOT error would answer 503 or leave the entry out).
func TestEveryMutatingRouteIsAuditedOnACluster(t *testing.T) {
	sys := startSystem(t, allowPrivateWebhooks, onCluster(t))
	walkEveryMutatingRoute(t, sys)
	// The walk's data is spread over the masters: the suite ran on the cluster, not beside it.
	var holding atomic.Int32 // ForEachMaster calls its function on the masters at once
	err := sys.rdb.(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		n, err := node.DBSize(ctx).Result()
		if n > 0 {
			holding.Add(1)
		}
		return err
	})
	if err != nil || holding.Load() < 2 {
		t.Errorf("%d of the cluster's masters hold keys (%v), want the walk's data on 2 or more", holding.Load(), err)
	}
}

func walkEveryMutatingRoute(t *testing.T, sys *system) {
	tenant, key := sys.newKey(t, "", append(slices.Clone(allScopes), "admin", "integration.read", "integration.write")...)
	principal, err := auth.NewStore(sys.rdb).Lookup(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(receiver.Close)
	w := walkWorld{"tenant": tenant, "key": key, "receiver": receiver.URL + "/hook"}

	routes := mutatingRoutes(t, sys)
	steps := walkSteps()
	walked := map[string]bool{}
	for _, s := range steps {
		if _, ok := routes[s.op]; !ok {
			t.Errorf("the walk has a fixture for %s, which the OpenAPI document does not have", s.op)
		}
		walked[s.op] = true
	}
	var missing []string
	for op := range routes {
		if !walked[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("mutating routes without a fixture in walkSteps: %v (a new route needs one, or a place in noAuditEvent with the reason it writes no event)", missing)
	}

	type call struct{ op, method, requestID string }
	var calls, staleCalls []call
	for i, s := range steps {
		if s.before != nil {
			s.before(t, sys, w)
		}
		route := routes[s.op]
		var params map[string]string
		if s.params != nil {
			params = s.params(w)
		}
		path := pathParam.ReplaceAllStringFunc(route.path, func(m string) string {
			v, ok := params[m[1:len(m)-1]]
			if !ok || v == "" {
				t.Fatalf("%s: no value for %s", s.op, m)
			}
			return url.PathEscape(v)
		})
		if s.query != "" {
			path += "?" + s.query
		}
		var reqBody []byte
		if s.body != nil {
			reqBody = []byte(s.body(w))
		}
		requestID := fmt.Sprintf("walk-%02d-%s", i, s.op)
		send := func(requestID, ifMatch string) (int, []byte) {
			req, err := http.NewRequest(route.method, sys.rest+path, bytes.NewReader(reqBody))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("X-Request-Id", requestID)
			if s.contentType != "" {
				req.Header.Set("Content-Type", s.contentType)
			}
			if ifMatch != "" {
				req.Header.Set("If-Match", ifMatch)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, answer
		}
		service, method, _ := strings.Cut(s.op, "_")
		var current string
		if route.ifMatch {
			staleID := requestID + "-stale"
			code, answer := send(staleID, `"stale-etag"`)
			var e struct {
				Error struct {
					Status  string `json:"status"`
					Details []struct {
						Type   string `json:"@type"`
						Reason string `json:"reason"`
						Domain string `json:"domain"`
					} `json:"details"`
				} `json:"error"`
			}
			_ = json.Unmarshal(answer, &e)
			domain := strings.ToLower(strings.TrimSuffix(service, "Service")) + ".crm"
			if code != http.StatusPreconditionFailed || e.Error.Status != "ABORTED" || len(e.Error.Details) == 0 ||
				e.Error.Details[0].Reason != "ETAG_MISMATCH" || e.Error.Details[0].Domain != domain {
				t.Errorf("%s %s (%s) with a stale If-Match: %d %s, want 412 ABORTED ETAG_MISMATCH of %s", route.method, path, s.op, code, answer, domain)
			}
			staleCalls = append(staleCalls, call{op: s.op, requestID: staleID})
			resource, _, _ := strings.Cut(path, "?")
			if i := strings.LastIndex(resource, ":"); i > strings.LastIndex(resource, "/") {
				resource = resource[:i]
			}
			get, err := http.NewRequest(http.MethodGet, sys.rest+resource, nil)
			if err != nil {
				t.Fatal(err)
			}
			get.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(get)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if current = resp.Header.Get("ETag"); resp.StatusCode != http.StatusOK || current == "" {
				t.Fatalf("GET %s (for %s's If-Match): %d, ETag %q", resource, s.op, resp.StatusCode, current)
			}
		}
		code, answer := send(requestID, current)
		if code != http.StatusOK {
			t.Fatalf("%s %s (%s): %d %s", route.method, path, s.op, code, answer)
		}
		var decoded any
		_ = json.Unmarshal(answer, &decoded)
		for name, p := range s.capture {
			if w[name] = jsonPath(decoded, p); w[name] == "" {
				t.Fatalf("%s: no %s in %s", s.op, p, answer)
			}
		}
		grpcMethod := "/crm." + strings.ToLower(strings.TrimSuffix(service, "Service")) + ".v1." + service + "/" + method
		if s.method != "" {
			grpcMethod = s.method
		}
		calls = append(calls, call{op: s.op, method: grpcMethod, requestID: requestID})
	}

	entriesOf := func(key, requestID string) []map[string]any {
		r := sys.ok(t, http.MethodGet, "/v1/auditLog?pageSize=100&filter="+url.QueryEscape(fmt.Sprintf("request_id = %q", requestID)), key, "")
		var out []map[string]any
		list, _ := r["auditEntries"].([]any)
		for _, e := range list {
			out = append(out, e.(map[string]any))
		}
		return out
	}
	for _, c := range calls {
		if _, quiet := noAuditEvent[c.op]; quiet {
			continue
		}
		entries := waitFor(t, c.op+"'s audit entry", func() []map[string]any { return entriesOf(key, c.requestID) },
			func(es []map[string]any) bool {
				return slices.ContainsFunc(es, func(e map[string]any) bool { return str(e, "method") == c.method })
			})
		for _, e := range entries {
			if str(e, "requestId") != c.requestID {
				t.Errorf("%s: entry %v under request %s", c.op, e, c.requestID)
			}
			if str(e, "method") == c.method && str(obj(e, "actor"), "apiKeyId") != principal.KeyID {
				t.Errorf("%s: entry %v, want the actor key %s", c.op, e, principal.KeyID)
			}
			// A resource filter finds every entry: none is indexed under "<type>/".
			if str(e, "resourceId") == "" {
				t.Errorf("%s: entry %s without a resource id: %v", c.op, str(e, "eventType"), e)
			}
		}
	}
	// The quiet routes: by now every other request's events are recorded, and so would theirs be.
	for _, c := range calls {
		if _, quiet := noAuditEvent[c.op]; quiet {
			if got := entriesOf(key, c.requestID); len(got) != 0 {
				t.Errorf("%s is listed as writing no event (%s) but the audit log has %v", c.op, noAuditEvent[c.op], got)
			}
		}
	}
	for _, c := range staleCalls {
		if got := entriesOf(key, c.requestID); len(got) != 0 {
			t.Errorf("%s with a stale If-Match wrote %v", c.op, got)
		}
	}
	_, foreign := sys.newKey(t, "", "admin")
	for _, c := range calls {
		if got := entriesOf(foreign, c.requestID); len(got) != 0 {
			t.Errorf("another tenant sees %s's entries: %v", c.op, got)
		}
	}
	if got := sys.ok(t, http.MethodGet, "/v1/auditLog", foreign, ""); got["auditEntries"] != nil {
		t.Errorf("another tenant's audit log: %v", got)
	}
	t.Logf("walked %d mutating routes (%d write no event, %d take If-Match)", len(routes), len(noAuditEvent), len(staleCalls))
}
