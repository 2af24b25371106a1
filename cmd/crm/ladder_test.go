package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// ladderCase is a sequence of purchases and the stage each step leaves the customer at.
// Steps: "once" orders a one-time product, "monthly" a monthly subscription, "cancel" ends the
// customer's active subscription now, "later" moves the clock past the churn window, "promoter"
// answers NPS 10 (which also makes the customer LOYAL: DESIGN §5, "repeat, client or advocate").
type ladderCase struct {
	name  string
	steps []string
	want  []string
}

var ladderTable = []ladderCase{
	{"one-time", []string{"once"}, []string{"FIRST_TIME_CUSTOMER"}},
	{"two one-time orders", []string{"once", "once"}, []string{"FIRST_TIME_CUSTOMER", "REPEAT_CUSTOMER"}},
	{"three one-time orders", []string{"once", "once", "once"}, []string{"FIRST_TIME_CUSTOMER", "REPEAT_CUSTOMER", "REPEAT_CUSTOMER"}},
	{"recurring", []string{"monthly"}, []string{"CLIENT"}},
	{"one-time then recurring", []string{"once", "monthly"}, []string{"FIRST_TIME_CUSTOMER", "CLIENT"}},
	{"one-time then promoter", []string{"once", "promoter"}, []string{"FIRST_TIME_CUSTOMER", "ADVOCATE"}},
	{"recurring then one-time", []string{"monthly", "once"}, []string{"CLIENT", "CLIENT"}},
	{"cancellation", []string{"monthly", "cancel"}, []string{"CLIENT", "FIRST_TIME_CUSTOMER"}},
	{"mixed then cancellation", []string{"once", "monthly", "cancel"}, []string{"FIRST_TIME_CUSTOMER", "CLIENT", "REPEAT_CUSTOMER"}},
	{"churn", []string{"once", "later"}, []string{"FIRST_TIME_CUSTOMER", "CHURNED"}},
	{"churn after a cancellation", []string{"monthly", "cancel", "later"}, []string{"CLIENT", "FIRST_TIME_CUSTOMER", "CHURNED"}},
	{"return after churn", []string{"once", "later", "once"}, []string{"FIRST_TIME_CUSTOMER", "CHURNED", "REPEAT_CUSTOMER"}},
	{"return after churn on a subscription", []string{"once", "later", "monthly"}, []string{"FIRST_TIME_CUSTOMER", "CHURNED", "CLIENT"}},
}

// TestTheLadderOverREST drives each sequence of the table through the real services over REST
// (orders through sales, subscriptions through product, reactions over the bus) and checks the
// stage after every step, and that the lifecycle's history went through those stages in order.
// "later" restarts the system with its clock past the churn window (the churn sweep runs when
// the background work starts).
func TestTheLadderOverREST(t *testing.T) {
	const past = 180*24*time.Hour + 24*time.Hour                           // a day past the default churn window
	_, key := servicetest.NewKey(t, redistest.Client(t), "", allScopes...) // for both systems
	type run struct {
		customer string
		at       int // the next step
	}
	runs := make([]run, len(ladderTable))
	var once, monthly string

	drive := func(t *testing.T, sys *system, stopAt string) {
		for i, c := range ladderTable {
			r := &runs[i]
			for ; r.at < len(c.steps); r.at++ {
				step := c.steps[r.at]
				if step == stopAt {
					break
				}
				switch step {
				case "once", "monthly":
					product := map[string]string{"once": once, "monthly": monthly}[step]
					sys.ok(t, http.MethodPost, "/v1/orders", key, fmt.Sprintf(`{"customerId":%q,"lines":[{"productId":%q,"quantity":1}]}`, r.customer, product))
				case "cancel":
					subs := waitFor(t, c.name+": an active subscription", func() []map[string]any { return sys.subscriptionsOf(t, key, r.customer) },
						func(s []map[string]any) bool {
							return slices.ContainsFunc(s, func(m map[string]any) bool { return str(m, "status") == "SUBSCRIPTION_STATUS_ACTIVE" })
						})
					i := slices.IndexFunc(subs, func(m map[string]any) bool { return str(m, "status") == "SUBSCRIPTION_STATUS_ACTIVE" })
					sys.ok(t, http.MethodPost, "/v1/subscriptions/"+str(subs[i], "id")+":cancel", key, `{}`)
				case "promoter":
					sys.ok(t, http.MethodPost, "/v1/npsResponses", key, fmt.Sprintf(`{"customerId":%q,"score":10}`, r.customer))
				case "later": // done by the restart; the sweep churns
				}
				want := "LIFECYCLE_STAGE_" + c.want[r.at]
				waitFor(t, fmt.Sprintf("%s, after step %d (%s)", c.name, r.at+1, step), func() string { return sys.stageOf(t, key, r.customer) },
					func(s string) bool { return s == want })
				if step == "promoter" {
					waitFor(t, c.name+": an advocate of one order is LOYAL", func() map[string]any {
						return sys.ok(t, http.MethodGet, "/v1/customers/"+r.customer+"/value", key, "")
					}, func(v map[string]any) bool { return str(v, "customerType") == "CUSTOMER_TYPE_LOYAL" })
				}
				if r.at == len(c.steps)-1 {
					checkLadderHistory(t, sys, key, r.customer, c)
				}
			}
		}
	}

	t.Run("before the churn window", func(t *testing.T) {
		sys := startSystem(t)
		once = str(sys.createProduct(t, key, productBody("LADDER-ONCE", "Setup", "BILLING_PERIOD_ONE_TIME")), "id")
		monthly = str(sys.createProduct(t, key, productBody("LADDER-MONTHLY", "Suite", "BILLING_PERIOD_MONTHLY")), "id")
		for i, c := range ladderTable {
			email := strings.ReplaceAll(c.name, " ", "-") + "@ladder.example"
			runs[i].customer = str(sys.ok(t, http.MethodPost, "/v1/contacts", key, `{"email":"`+email+`"}`), "customerId")
		}
		drive(t, sys, "later")
	})
	t.Run("past the churn window", func(t *testing.T) {
		sys := startSystemAt(t, func() time.Time { return time.Now().Add(past) })
		drive(t, sys, "")

	})
}

// checkLadderHistory checks that the customer's lifecycle history went through the case's stages in
// order and ends at the last, and that the first purchase passed FIRST_TIME_CUSTOMER (a first order
// of a recurring product too, whichever of the order and subscription events came first).
func checkLadderHistory(t *testing.T, sys *system, key, customer string, c ladderCase) {
	t.Helper()
	lc := sys.ok(t, http.MethodGet, "/v1/customers/"+customer+"/lifecycle", key, "")
	var stages []string
	history, _ := lc["history"].([]any)
	for _, m := range history {
		stages = append(stages, strings.TrimPrefix(str(m.(map[string]any), "to"), "LIFECYCLE_STAGE_"))
	}
	if !isSubsequence(dedupe(append([]string{"PROSPECT", "FIRST_TIME_CUSTOMER"}, c.want...)), stages) || stages[len(stages)-1] != c.want[len(c.want)-1] {
		t.Errorf("%s: history %v, want it through %v", c.name, stages, c.want)
	}
}

// dedupe drops repeats in a row.
func dedupe(s []string) []string { return slices.Compact(slices.Clone(s)) }
