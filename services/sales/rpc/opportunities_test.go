package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/servicetest"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// dealParties creates an account and a contact in it, and returns their ids and the contact's
// customer id.
func (s *system) dealParties(t *testing.T, key, email string) (account, contact, customer string) {
	t.Helper()
	account = str(s.OK(t, http.MethodPost, "/v1/accounts", key, `{"displayName":"Deal Co"}`), "id")
	c := s.OK(t, http.MethodPost, "/v1/contacts", key, fmt.Sprintf(`{"email":%q,"accountId":%q}`, email, account))
	return account, str(c, "id"), str(c, "customerId")
}

// newDeal opens a deal for contact in EUR and returns it.
func (s *system) newDeal(t *testing.T, key, contact, extra string) map[string]any {
	t.Helper()
	return s.OK(t, http.MethodPost, "/v1/opportunities", key,
		fmt.Sprintf(`{"displayName":"Deal","contactId":%q,"currencyCode":"EUR"%s}`, contact, extra))
}

func TestPipelines(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", salesScopes...)

	def := sys.OK(t, http.MethodGet, "/v1/pipelines/default", key, "")
	var stages []string
	for _, s := range def["stages"].([]any) {
		stages = append(stages, str(s.(map[string]any), "id"))
	}
	if diff := cmp.Diff([]string{"PROSPECTING", "QUALIFICATION", "PROPOSAL", "NEGOTIATION", "CLOSED_WON", "CLOSED_LOST"}, stages); diff != "" {
		t.Fatalf("default stages (-want +got):\n%s", diff)
	}
	custom := `{"displayName":"Enterprise","stages":[
		{"id":"DISCOVERY","probability":30,"forecastCategory":"FORECAST_CATEGORY_PIPELINE","outcome":"STAGE_OUTCOME_OPEN"},
		{"id":"DEMO","probability":60,"forecastCategory":"FORECAST_CATEGORY_COMMIT","outcome":"STAGE_OUTCOME_OPEN"},
		{"id":"SIGNED","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},
		{"id":"GONE","probability":0,"forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`
	p := sys.OK(t, http.MethodPost, "/v1/pipelines", key, custom)
	pid := str(p, "id")
	if got := ids(sys.OK(t, http.MethodGet, "/v1/pipelines", key, ""), "pipelines"); !slices.Equal(got, []string{"default", pid}) {
		t.Fatalf("pipelines = %v, want default then %s", got, pid)
	}
	first := sys.OK(t, http.MethodGet, "/v1/pipelines?pageSize=1", key, "")
	if next := sys.OK(t, http.MethodGet, "/v1/pipelines?pageSize=1&pageToken="+url.QueryEscape(str(first, "nextPageToken")), key, ""); !slices.Equal(ids(next, "pipelines"), []string{pid}) {
		t.Fatalf("second page of pipelines = %v", next)
	}
	for name, body := range map[string]string{
		"no won stage":      `{"displayName":"x","stages":[{"id":"A","forecastCategory":"FORECAST_CATEGORY_PIPELINE","outcome":"STAGE_OUTCOME_OPEN"},{"id":"B","forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"},{"id":"C","forecastCategory":"FORECAST_CATEGORY_PIPELINE","outcome":"STAGE_OUTCOME_OPEN"}]}`,
		"duplicate stage":   `{"displayName":"x","stages":[{"id":"A","forecastCategory":"FORECAST_CATEGORY_PIPELINE","outcome":"STAGE_OUTCOME_OPEN"},{"id":"A","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},{"id":"B","forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`,
		"open stage closed": `{"displayName":"x","stages":[{"id":"A","forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_OPEN"},{"id":"W","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},{"id":"B","forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`,
		"bad stage id":      `{"displayName":"x","stages":[{"id":"a b"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			sys.Fails(t, http.MethodPost, "/v1/pipelines", key, body, http.StatusBadRequest, "INVALID_ARGUMENT")
		})
	}

	// A stage holding an open deal cannot be removed; an empty one can; the deal keeps working.
	_, contact, _ := sys.dealParties(t, key, "pipe@example.com")
	deal := sys.newDeal(t, key, contact, fmt.Sprintf(`,"pipelineId":%q`, pid))
	if str(deal, "stage") != "DISCOVERY" || deal["probability"] != float64(30) {
		t.Fatalf("deal in the custom pipeline = %v", deal)
	}
	withoutDiscovery := `{"stages":[
		{"id":"DEMO","probability":60,"forecastCategory":"FORECAST_CATEGORY_COMMIT","outcome":"STAGE_OUTCOME_OPEN"},
		{"id":"SIGNED","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},
		{"id":"GONE","probability":0,"forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`
	sys.Fails(t, http.MethodPatch, "/v1/pipelines/"+pid+"?updateMask=stages", key, withoutDiscovery, http.StatusBadRequest, "FAILED_PRECONDITION")
	withoutDemo := `{"etag":"1","stages":[
		{"id":"DISCOVERY","probability":40,"forecastCategory":"FORECAST_CATEGORY_BEST_CASE","outcome":"STAGE_OUTCOME_OPEN"},
		{"id":"SIGNED","probability":100,"forecastCategory":"FORECAST_CATEGORY_CLOSED","outcome":"STAGE_OUTCOME_WON"},
		{"id":"GONE","probability":0,"forecastCategory":"FORECAST_CATEGORY_OMITTED","outcome":"STAGE_OUTCOME_LOST"}]}`
	if upd := sys.OK(t, http.MethodPatch, "/v1/pipelines/"+pid+"?updateMask=stages", key, withoutDemo); str(upd, "etag") != "2" {
		t.Fatalf("pipeline update = %v", upd)
	}
	sys.Fails(t, http.MethodPatch, "/v1/pipelines/"+pid+"?updateMask=displayName", key, `{"displayName":"x","etag":"1"}`, http.StatusConflict, "ABORTED")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+str(deal, "id")+":moveStage", key, `{"stage":"DEMO"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	if lost := sys.OK(t, http.MethodPost, "/v1/opportunities/"+str(deal, "id")+":lose", key, `{"reason":"budget"}`); str(lost, "stage") != "GONE" {
		t.Fatalf("lost deal = %v, want the pipeline's LOST stage", lost)
	}

	// Editing the default pipeline stores it; its etag moves from "0".
	if upd := sys.OK(t, http.MethodPatch, "/v1/pipelines/default?updateMask=displayName", key, `{"displayName":"Ours","etag":"0"}`); str(upd, "etag") != "1" || len(upd["stages"].([]any)) != 6 {
		t.Fatalf("default pipeline update = %v", upd)
	}
	sys.Fails(t, http.MethodGet, "/v1/pipelines/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodPost, "/v1/opportunities", key, fmt.Sprintf(`{"displayName":"x","contactId":%q,"pipelineId":"0190a0c1-0000-7000-8000-000000000000"}`, contact),
		http.StatusBadRequest, "INVALID_ARGUMENT")
}

func TestOpportunitiesOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "SALES-PRO", "Sales Pro", productv1.BillingPeriod_BILLING_PERIOD_YEARLY)
	account, contact, customer := sys.dealParties(t, key, "buyer@example.com")

	deal := sys.newDeal(t, key, contact, `,"ownerId":"ada","closeDate":"2026-08-20"`)
	id := str(deal, "id")
	for field, want := range map[string]any{"stage": "PROSPECTING", "probability": float64(10), "customerId": customer,
		"accountId": account, "pipelineId": "default", "status": "OPPORTUNITY_STATUS_OPEN", "etag": "1"} {
		if deal[field] != want {
			t.Errorf("created deal %s = %v, want %v", field, deal[field], want)
		}
	}
	sys.Fails(t, http.MethodPost, "/v1/opportunities", key, `{"displayName":"nobody"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/opportunities", key, `{"displayName":"x","contactId":"0190a0c1-0000-7000-8000-000000000000"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/opportunities", key, `{"displayName":"x","accountId":"0190a0c1-0000-7000-8000-000000000000"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/opportunities", key, fmt.Sprintf(`{"displayName":"x","contactId":%q,"closeDate":"2026-02-30"}`, contact), http.StatusBadRequest, "INVALID_ARGUMENT")

	// A line is priced by product when added; a later price change does not alter it.
	added := sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":3,"discountPercent":10}`, product))
	line := obj(added, "lineItem")
	if str(obj(line, "unitPrice"), "units") != "10" || obj(line, "unitPrice")["nanos"] != float64(500000000) || str(line, "sku") != "SALES-PRO" ||
		line["recurring"] != true || str(obj(line, "total"), "units") != "28" || obj(line, "total")["nanos"] != float64(350000000) {
		t.Fatalf("priced line = %v, want 3 x 10.50 EUR less 10%% = 28.35", line)
	}
	sys.catalog.setPrice(tenant, product, &typev1.Money{CurrencyCode: "EUR", Units: 20})
	again := sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":1}`, product))
	lines := obj(again, "opportunity")["lineItems"].([]any)
	if len(lines) != 2 || str(obj(lines[0].(map[string]any), "unitPrice"), "units") != "10" || str(obj(lines[1].(map[string]any), "unitPrice"), "units") != "20" {
		t.Fatalf("lines after a price change = %v", lines)
	}
	if amount := obj(obj(again, "opportunity"), "amount"); str(amount, "units") != "48" || amount["nanos"] != float64(350000000) {
		t.Fatalf("amount = %v, want 48.35 (the sum of the lines)", amount)
	}
	archived := sys.catalog.add(tenant, "OLD", "Old", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	sys.catalog.archive(tenant, archived)
	for _, p := range []string{archived, "0190a0c1-0000-7000-8000-000000000000"} {
		r := sys.Do(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, []byte(fmt.Sprintf(`{"productId":%q,"quantity":1}`, p)))
		if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" || !slices.Equal(r.FieldViolations(t), []string{"lineItem.productId"}) {
			t.Fatalf("a line of product %s: %d %s, want 400 FAILED_PRECONDITION naming lineItem.productId", p, r.Status, r.Body)
		}
	}
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":0}`, product), http.StatusBadRequest, "INVALID_ARGUMENT")

	// Updates: a deal with lines has no free amount; a stale etag is 409.
	sys.Fails(t, http.MethodPatch, "/v1/opportunities/"+id+"?updateMask=amount", key, `{"amount":{"currencyCode":"EUR","units":"1"}}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	upd := sys.OK(t, http.MethodPatch, "/v1/opportunities/"+id+"?updateMask=closeDate,displayName", key, `{"closeDate":"2026-09-10","displayName":"Big deal","etag":"3"}`)
	if str(upd, "closeDate") != "2026-09-10" || str(upd, "etag") != "4" || len(upd["lineItems"].([]any)) != 2 {
		t.Fatalf("update = %v", upd)
	}
	sys.Fails(t, http.MethodPatch, "/v1/opportunities/"+id+"?updateMask=displayName", key, `{"displayName":"x","etag":"3"}`, http.StatusConflict, "ABORTED")

	// Stage moves: probability and category follow; closed stages only through win and lose.
	moved := sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, `{"stage":"PROPOSAL"}`)
	if moved["probability"] != float64(50) || str(moved, "forecastCategory") != "FORECAST_CATEGORY_BEST_CASE" || len(moved["stageHistory"].([]any)) != 2 {
		t.Fatalf("moved deal = %v", moved)
	}
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, `{"stage":"CLOSED_WON"}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, `{"stage":"NOPE"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, `{"stage":"proposal"}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, `{"stage":"NEGOTIATION","etag":"1"}`, http.StatusConflict, "ABORTED")

	// Lists by index.
	other := sys.newDeal(t, key, contact, `,"ownerId":"bob","closeDate":"2026-12-01","amount":{"currencyCode":"EUR","units":"7000"}`)
	for _, c := range []struct{ filter, want string }{
		{`stage = "PROPOSAL"`, id},
		{`owner_id = "bob"`, str(other, "id")},
		{`close_date >= "2026-09-01" AND close_date < "2026-10-01"`, id},
		{`amount > 1000`, str(other, "id")},
		{`amount <= 48`, ""},
		{`amount <= 49`, id},
	} {
		got := ids(sys.OK(t, http.MethodGet, "/v1/opportunities?filter="+url.QueryEscape(c.filter), key, ""), "opportunities")
		if want := []string{c.want}; (c.want == "" && len(got) != 0) || (c.want != "" && !slices.Equal(got, want)) {
			t.Errorf("filter %s = %v, want %q", c.filter, got, c.want)
		}
	}
	if got := ids(sys.OK(t, http.MethodGet, "/v1/opportunities?filter="+url.QueryEscape(fmt.Sprintf(`account_id = %q`, account)), key, ""), "opportunities"); len(got) != 2 {
		t.Errorf("deals of the account = %v", got)
	}
	sys.Fails(t, http.MethodGet, "/v1/opportunities?filter="+url.QueryEscape(`amount > 1 AND stage = "X"`), key, "", http.StatusBadRequest, "INVALID_ARGUMENT")

	// Winning needs line items; a win places the order at the quoted prices, in the same write.
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+str(other, "id")+":win", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	won := sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+":win", key, `{}`)
	opp, order := obj(won, "opportunity"), obj(won, "order")
	if str(opp, "status") != "OPPORTUNITY_STATUS_WON" || str(opp, "stage") != "CLOSED_WON" || opp["probability"] != float64(100) || str(opp, "orderId") != str(order, "id") {
		t.Fatalf("won deal = %v", opp)
	}
	if str(order, "customerId") != customer || str(order, "opportunityId") != id || str(obj(order, "total"), "units") != "48" || len(order["lines"].([]any)) != 2 {
		t.Fatalf("order = %v", order)
	}
	placed := sys.events(t, tenant, "sales.order.placed")
	payload := &salesv1.OrderPlaced{}
	if len(placed) != 1 || placed[0].GetPayload().UnmarshalTo(payload) != nil || payload.GetOrder().GetId() != str(order, "id") ||
		len(payload.GetOrder().GetLines()) != 2 || placed[0].GetCustomerId() != customer {
		t.Fatalf("order placed events = %v", placed)
	}
	if n := len(sys.events(t, tenant, "sales.opportunity.won")); n != 1 {
		t.Fatalf("%d won events, want 1", n)
	}
	if got := sys.OK(t, http.MethodGet, "/v1/orders/"+str(order, "id"), key, ""); str(got, "id") != str(order, "id") {
		t.Fatalf("get order = %v", got)
	}
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":win", key, `{}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+":lose", key, `{"reason":"x"}`, http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":1}`, product), http.StatusBadRequest, "FAILED_PRECONDITION")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+str(other, "id")+":lose", key, `{}`, http.StatusBadRequest, "INVALID_ARGUMENT")
	lost := sys.OK(t, http.MethodPost, "/v1/opportunities/"+str(other, "id")+":lose", key, `{"reason":"went with a competitor"}`)
	if str(lost, "status") != "OPPORTUNITY_STATUS_LOST" || str(lost, "lostReason") != "went with a competitor" || str(lost, "stage") != "CLOSED_LOST" {
		t.Fatalf("lost deal = %v", lost)
	}
	if n := len(sys.events(t, tenant, "sales.opportunity.lost")); n != 1 {
		t.Fatalf("%d lost events, want 1", n)
	}
	sys.Fails(t, http.MethodGet, "/v1/opportunities/0190a0c1-0000-7000-8000-000000000000", key, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/0190a0c1-0000-7000-8000-000000000000:win", key, `{}`, http.StatusNotFound, "NOT_FOUND")
}

// TestConcurrentWinsPlaceOneOrder: racing wins of one deal place exactly one order.
func TestConcurrentWinsPlaceOneOrder(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "RACE", "Race", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)
	_, contact, _ := sys.dealParties(t, key, "race@example.com")
	for round := range 3 {
		id := str(sys.newDeal(t, key, contact, ""), "id")
		sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":2}`, product))
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Go(func() {
				codes[i] = sys.Do(t, http.MethodPost, "/v1/opportunities/"+id+":win", key, []byte(`{}`)).Status
			})
		}
		wg.Wait()
		if n := countOf(codes, http.StatusOK); n != 1 || countOf(codes, http.StatusBadRequest) != len(codes)-1 {
			t.Fatalf("round %d: win answers %v, want one 200 and the rest 400", round, codes)
		}
	}
	orders := ids(sys.OK(t, http.MethodGet, "/v1/orders", key, ""), "orders")
	if len(orders) != 3 || len(sys.events(t, tenant, "sales.order.placed")) != 3 {
		t.Fatalf("%d orders for 3 deals won by racing wins", len(orders))
	}
}

// TestConcurrentStageMovesKeepHistory: racing moves serialize: the history is a chain that
// ends in the current stage, with one stage_changed event per link.
func TestConcurrentStageMovesKeepHistory(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, contact, _ := sys.dealParties(t, key, "moves@example.com")
	id := str(sys.newDeal(t, key, contact, ""), "id")
	stages := []string{"QUALIFICATION", "PROPOSAL", "NEGOTIATION", "PROSPECTING"}
	var wg sync.WaitGroup
	// Fewer racers than the use case's optimistic attempts: every round lets one of them through,
	// so each move lands.
	for i := range 6 {
		wg.Go(func() {
			r := sys.Do(t, http.MethodPost, "/v1/opportunities/"+id+":moveStage", key, fmt.Appendf(nil, `{"stage":%q}`, stages[i%len(stages)]))
			if r.Status != http.StatusOK {
				t.Errorf("move: %d %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	deal := sys.OK(t, http.MethodGet, "/v1/opportunities/"+id, key, "")
	history := deal["stageHistory"].([]any)
	prev := ""
	for i, h := range history {
		entry := h.(map[string]any)
		if str(entry, "fromStage") != prev || str(entry, "stage") == prev {
			t.Fatalf("history entry %d = %v after %q: not a chain: %v", i, entry, prev, history)
		}
		prev = str(entry, "stage")
	}
	if prev != str(deal, "stage") || len(history) < 2 {
		t.Fatalf("history ends in %q, deal is in %q", prev, str(deal, "stage"))
	}
	if n := len(sys.events(t, tenant, "sales.opportunity.stage_changed")); n != len(history)-1 {
		t.Fatalf("%d stage_changed events for %d moves in the history", n, len(history)-1)
	}
}

func countOf(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

// rateCharges counts the rate limiter's charges (its GCRA script on a key's bucket).
type rateCharges struct{ n atomic.Int64 }

func (h *rateCharges) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *rateCharges) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.HasPrefix(s, "rate:crm:ratelimit:") {
				h.n.Add(1)
			}
		}
		return next(ctx, cmd)
	}
}
func (h *rateCharges) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestCallsOnTheClientsBehalfAreChargedOnce: adding a line item calls the product service on the
// client's behalf; the client's rate limit is charged for its own call only.
func TestCallsOnTheClientsBehalfAreChargedOnce(t *testing.T) {
	// A batch of one token per charge (rate/10 < 1), so every charge is one script call.
	sys := startSystem(t, func(o *servicetest.Options) { o.RateLimit = &ratelimit.Config{PerSecond: 1, Burst: 100} })
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "CHARGED-ONCE", "Charged once", productv1.BillingPeriod_BILLING_PERIOD_YEARLY)
	_, contact, _ := sys.dealParties(t, key, "once@example.com")
	id := str(sys.newDeal(t, key, contact, ""), "id")
	charges := &rateCharges{}
	sys.Suite.Redis.AddHook(charges)

	sys.OK(t, http.MethodPost, "/v1/opportunities/"+id+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":1}`, product))
	if n := charges.n.Load(); n != 1 {
		t.Fatalf("adding a line item charged the key %d times, want once (the client's call, not sales' call to product)", n)
	}
}
