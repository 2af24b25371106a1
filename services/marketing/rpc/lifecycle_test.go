package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func lifecyclePath(customer, suffix string) string {
	return "/v1/customers/" + customer + "/lifecycle" + suffix
}

func TestLifecycleOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	customer := sys.captureLead(t, key, `{"email":"cycle@example.com"}`)["customerId"].(string)

	got := sys.Do(t, http.MethodGet, lifecyclePath(customer, ""), reader, nil)
	if got.Status != http.StatusOK || got.JSON(t)["stage"] != "LIFECYCLE_STAGE_PROSPECT" {
		t.Fatalf("lifecycle after capture: %d %s", got.Status, got.Body)
	}
	move := sys.Do(t, http.MethodPost, lifecyclePath(customer, ":move"), key,
		[]byte(`{"stage":"LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER","cause":"sales.order.placed","causeEventId":"evt-1"}`))
	if move.Status != http.StatusOK || move.JSON(t)["stage"] != "LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER" || len(move.JSON(t)["history"].([]any)) != 2 {
		t.Fatalf("move: %d %s", move.Status, move.Body)
	}
	again := sys.Do(t, http.MethodPost, lifecyclePath(customer, ":move"), key,
		[]byte(`{"stage":"LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER","cause":"sales.order.placed","causeEventId":"evt-1"}`))
	if again.Status != http.StatusOK || len(again.JSON(t)["history"].([]any)) != 2 {
		t.Fatalf("redelivered move: %d %s, want the same lifecycle", again.Status, again.Body)
	}
	risk := sys.Do(t, http.MethodPost, lifecyclePath(customer, ":setAtRisk"), key, []byte(`{"reason":"nps-detractor"}`))
	if risk.Status != http.StatusOK || risk.JSON(t)["atRisk"] != true {
		t.Fatalf("set at risk: %d %s", risk.Status, risk.Body)
	}
	clear := sys.Do(t, http.MethodPost, lifecyclePath(customer, ":clearAtRisk"), key, []byte(`{}`))
	if clear.Status != http.StatusOK || clear.JSON(t)["atRisk"] != nil {
		t.Fatalf("clear at risk: %d %s", clear.Status, clear.Body)
	}
	funnel := sys.Do(t, http.MethodGet, "/v1/lifecycle/funnel", reader, nil)
	stages := funnel.JSON(t)["stages"].([]any)
	if funnel.Status != http.StatusOK || len(stages) != 7 || stages[2].(map[string]any)["customers"] != "1" ||
		stages[1].(map[string]any)["exited"] != "1" || funnel.JSON(t)["conversions"].([]any)[0].(map[string]any)["rate"] != float64(1) {
		t.Fatalf("funnel: %d %s", funnel.Status, funnel.Body)
	}
	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b699"
	for _, tt := range []struct {
		name, method, path, key, body string
		code                          int
		status, field                 string
	}{
		{"backward move", http.MethodPost, lifecyclePath(customer, ":move"), key, `{"stage":"LIFECYCLE_STAGE_PROSPECT","cause":"x"}`, 400, "FAILED_PRECONDITION", ""},
		{"churned from a prospect", http.MethodPost, lifecyclePath(sys.captureLead(t, key, `{"email":"p2@example.com"}`)["customerId"].(string), ":move"), key,
			`{"stage":"LIFECYCLE_STAGE_CHURNED","cause":"x"}`, 400, "FAILED_PRECONDITION", ""},
		{"move without cause", http.MethodPost, lifecyclePath(customer, ":move"), key, `{"stage":"LIFECYCLE_STAGE_CLIENT"}`, 400, "INVALID_ARGUMENT", "cause"},
		{"move without stage", http.MethodPost, lifecyclePath(customer, ":move"), key, `{"cause":"x"}`, 400, "INVALID_ARGUMENT", "stage"},
		{"unknown customer", http.MethodGet, lifecyclePath(unknown, ""), key, ``, 404, "NOT_FOUND", ""},
		{"at risk of an unknown customer", http.MethodPost, lifecyclePath(unknown, ":setAtRisk"), key, `{"reason":"x"}`, 404, "NOT_FOUND", ""},
		{"clear risk of an unknown customer", http.MethodPost, lifecyclePath(unknown, ":clearAtRisk"), key, `{}`, 404, "NOT_FOUND", ""},
		{"at risk without reason", http.MethodPost, lifecyclePath(customer, ":setAtRisk"), key, `{}`, 400, "INVALID_ARGUMENT", "reason"},
		{"bad customer id", http.MethodGet, lifecyclePath("nope", ""), key, ``, 400, "INVALID_ARGUMENT", "customerId"},
		{"move with a read-only key", http.MethodPost, lifecyclePath(customer, ":move"), reader, `{"stage":"LIFECYCLE_STAGE_CLIENT","cause":"x"}`, 403, "PERMISSION_DENIED", ""},
		{"another tenant's lifecycle", http.MethodGet, lifecyclePath(customer, ""), stranger, ``, 404, "NOT_FOUND", ""},
		{"another tenant's at risk", http.MethodPost, lifecyclePath(customer, ":setAtRisk"), stranger, `{"reason":"x"}`, 404, "NOT_FOUND", ""},
		{"another tenant's clear", http.MethodPost, lifecyclePath(customer, ":clearAtRisk"), stranger, `{}`, 404, "NOT_FOUND", ""},
		{"funnel without a key", http.MethodGet, "/v1/lifecycle/funnel", "", ``, 401, "UNAUTHENTICATED", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := sys.Do(t, tt.method, tt.path, tt.key, body)
			if r.Status != tt.code || r.ErrorStatus(t) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	// A move under another tenant is about a customer that tenant does not have: refused, the
	// owner's lifecycle untouched, the other tenant's funnel empty.
	if r := sys.Do(t, http.MethodPost, lifecyclePath(customer, ":move"), stranger, []byte(`{"stage":"LIFECYCLE_STAGE_CLIENT","cause":"x"}`)); r.Status != http.StatusNotFound {
		t.Fatalf("another tenant's move: %d %s, want 404", r.Status, r.Body)
	}
	if got := sys.Do(t, http.MethodGet, lifecyclePath(customer, ""), key, nil).JSON(t)["stage"]; got != "LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER" {
		t.Fatalf("owner's stage after another tenant's move = %v", got)
	}
	for _, s := range sys.Do(t, http.MethodGet, "/v1/lifecycle/funnel", stranger, nil).JSON(t)["stages"].([]any) {
		if s.(map[string]any)["customers"] != nil || s.(map[string]any)["entered"] != nil {
			t.Fatalf("another tenant's funnel has %v, want nothing", s)
		}
	}
}

func TestLifecycleOverGRPC(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	lead, err := client.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "grpc-cycle@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	customer := lead.GetLead().GetCustomerId()
	moved, err := client.MoveLifecycleStage(ctx, &marketingv1.MoveLifecycleStageRequest{CustomerId: customer,
		Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT, Cause: "product.subscription.activated"})
	if err != nil || moved.GetLifecycle().GetStage() != marketingv1.LifecycleStage_LIFECYCLE_STAGE_CLIENT {
		t.Fatalf("move: %v %v", moved, err)
	}
	if _, err := client.MoveLifecycleStage(ctx, &marketingv1.MoveLifecycleStageRequest{CustomerId: customer,
		Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, Cause: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("backward move: %v, want FailedPrecondition", err)
	}
	set, err := client.SetCustomerAtRisk(ctx, &marketingv1.SetCustomerAtRiskRequest{CustomerId: customer, Reason: "subscription-canceled"})
	if err != nil || !set.GetLifecycle().GetAtRisk() {
		t.Fatalf("set at risk: %v %v", set, err)
	}
	cleared, err := client.ClearCustomerAtRisk(ctx, &marketingv1.ClearCustomerAtRiskRequest{CustomerId: customer, Reason: "subscription-canceled"})
	if err != nil || cleared.GetLifecycle().GetAtRisk() {
		t.Fatalf("clear at risk: %v %v", cleared, err)
	}
	got, err := client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
	if err != nil || len(got.GetLifecycle().GetHistory()) != 2 {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: "01a20b45-2a28-7f41-b702-1121b1b3b699"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown customer: %v, want NotFound", err)
	}
	funnel, err := client.GetLifecycleFunnel(ctx, &marketingv1.GetLifecycleFunnelRequest{})
	if err != nil || funnel.GetFunnel().GetStages()[4].GetCustomers() != 1 {
		t.Fatalf("funnel: %v %v", funnel, err)
	}
}

func TestFunnelByPeriodOverRESTAndGRPC(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	sys := startSystem(t, func(o *servicetest.Options) { o.Now = func() time.Time { return now } })
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, foreign := sys.NewKey(t, "", "marketing.read", "marketing.write")
	sys.captureLead(t, key, `{"email":"nov1@example.com"}`)
	sys.captureLead(t, key, `{"email":"nov2@example.com"}`)

	prospects := func(f map[string]any) any {
		for _, s := range f["stages"].([]any) {
			if row := s.(map[string]any); row["stage"] == "LIFECYCLE_STAGE_PROSPECT" {
				return row["entered"]
			}
		}
		return nil
	}
	for _, period := range []string{"2026-11", "2026-Q4"} {
		f := sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel?period="+period, key, "")
		if f["period"] != period || prospects(f) != "2" || f["medianRelativeError"] == nil {
			t.Fatalf("funnel of %s = %v, want two prospects entered and the median's error bound", period, f)
		}
		if other := sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel?period="+period, foreign, ""); prospects(other) != nil {
			t.Fatalf("another tenant's funnel of %s = %v, want nothing entered", period, other)
		}
	}
	if f := sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel?period=2026-10", key, ""); prospects(f) != nil {
		t.Fatalf("the empty October = %v", f)
	}
	series := sys.OK(t, http.MethodGet, "/v1/lifecycle/funnel:series?periods=3", key, "")
	fs := series["funnels"].([]any)
	if len(fs) != 3 || fs[0].(map[string]any)["period"] != "2026-09" || prospects(fs[2].(map[string]any)) != "2" {
		t.Fatalf("three months to now = %v", series)
	}
	client, ctx := sys.marketing(key)
	quarters, err := client.GetLifecycleFunnelSeries(ctx, &marketingv1.GetLifecycleFunnelSeriesRequest{Period: "2026-Q4"})
	if err != nil || len(quarters.GetFunnels()) != 6 || quarters.GetFunnels()[0].GetPeriod() != "2025-Q3" {
		t.Fatalf("six quarters to 2026-Q4: %v, %v", quarters, err)
	}
	if _, err := client.GetLifecycleFunnel(ctx, &marketingv1.GetLifecycleFunnelRequest{Period: "2026-Q0"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("2026-Q0 over gRPC: %v, want InvalidArgument", err)
	}
	for path, field := range map[string]string{
		"/v1/lifecycle/funnel?period=2026-13":       "period",
		"/v1/lifecycle/funnel?period=2026-Q5":       "period",
		"/v1/lifecycle/funnel?period=26-11":         "period",
		"/v1/lifecycle/funnel:series?period=2026-1": "period",
		"/v1/lifecycle/funnel:series?periods=25":    "periods",
		"/v1/lifecycle/funnel:series?periods=-1":    "periods",
	} {
		details := sys.Fails(t, http.MethodGet, path, key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
		if !strings.Contains(fmt.Sprint(details), "field:"+field) {
			t.Errorf("%s: details %v, want a violation of %s", path, details, field)
		}
	}
}
