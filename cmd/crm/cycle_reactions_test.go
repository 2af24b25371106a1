package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// eventually polls check until it holds or the deadline passes: reactions run on the bus, so the
// test waits for them without sleeping a fixed time.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen; last state: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCycleReactionsOverREST drives a customer through REST only and waits for marketing's
// reactions: the conversion marks the lead and counts for the campaign, the order moves the
// lifecycle, credits points and attributes revenue, the subscription makes a CLIENT, and an NPS of
// 10 makes an ADVOCATE.
func TestCycleReactionsOverREST(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.newKey(t, "", append(salesScopes, "support.read", "support.write")...)
	product := str(sys.createProduct(t, key, productBody("CYCLE", "Cycle", "BILLING_PERIOD_MONTHLY")), "id")
	campaign := str(sys.createCampaign(t, key, campaignBody), "id")
	lead := sys.captureLead(t, key, fmt.Sprintf(`{"email":"cycle@example.com","company":"Cycle","campaignId":%q}`, campaign))
	leadID, customer := str(lead, "id"), str(lead, "customerId")
	performance := func() map[string]any {
		return sys.ok(t, http.MethodGet, "/v1/campaigns/"+campaign+"/performance", key, "")
	}

	sys.ok(t, http.MethodPost, "/v1/leads/"+leadID+":convert", key, `{}`)
	eventually(t, "the lead's conversion", func() (bool, string) {
		got, perf := sys.ok(t, http.MethodGet, "/v1/leads/"+leadID, key, ""), performance()
		return str(got, "status") == "LEAD_STATUS_CONVERTED" && perf["conversions"] == "1", fmt.Sprint(got["status"], perf)
	})

	// 10 seats at 10.50 EUR: 105 EUR, 105 points at the default earn rate.
	sys.ok(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"currencyCode":"EUR","lines":[{"productId":%q,"quantity":10}]}`, customer, product))
	lifecyclePath := "/v1/customers/" + customer + "/lifecycle"
	eventually(t, "the order's reactions", func() (bool, string) {
		lc := sys.ok(t, http.MethodGet, lifecyclePath, key, "")
		loyalty := sys.do(t, http.MethodGet, "/v1/customers/"+customer+"/loyalty", key, nil)
		perf := performance()
		revenue := obj(perf, "wonRevenue")
		done := str(lc, "stage") == "LIFECYCLE_STAGE_CLIENT" && loyalty.status == http.StatusOK &&
			str(loyalty.json(t), "pointsBalance") == "105" && str(revenue, "units") == "105" && str(revenue, "currencyCode") == "EUR"
		return done, fmt.Sprint(lc["stage"], " ", string(loyalty.body), " ", perf)
	})

	sys.ok(t, http.MethodPost, "/v1/npsResponses", key, fmt.Sprintf(`{"customerId":%q,"score":10}`, customer))
	eventually(t, "the promoter's advocacy", func() (bool, string) {
		lc := sys.ok(t, http.MethodGet, lifecyclePath, key, "")
		return str(lc, "stage") == "LIFECYCLE_STAGE_ADVOCATE", fmt.Sprint(lc)
	})
	// Settled: the points and the revenue were counted once, whatever the redeliveries.
	loyalty := sys.ok(t, http.MethodGet, "/v1/customers/"+customer+"/loyalty", key, "")
	if perf := performance(); str(loyalty, "pointsBalance") != "105" || str(obj(perf, "wonRevenue"), "units") != "105" || perf["conversions"] != "1" {
		t.Fatalf("after the cycle: loyalty %v, performance %v", loyalty, perf)
	}
}
