package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func loyaltyPath(customer, suffix string) string {
	return "/v1/customers/" + customer + "/loyalty" + suffix
}

func TestLoyaltyOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	customer := sys.newCustomer(t, key)

	if r := sys.Do(t, http.MethodGet, loyaltyPath(customer, ""), key, nil); r.Status != http.StatusNotFound {
		t.Fatalf("account before any points: %d %s, want 404", r.Status, r.Body)
	}
	// Nothing earned yet is a balance of 0: the redemption is over it (DESIGN §4), not a missing
	// resource.
	if r := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":redeem"), key, []byte(`{"points":"1","reward":"mug"}`)); r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" {
		t.Fatalf("redeem without an account: %d %s, want 400 FAILED_PRECONDITION", r.Status, r.Body)
	}
	credit := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, []byte(`{"points":"600","reason":"welcome"}`))
	if a := credit.JSON(t)["account"].(map[string]any); credit.Status != http.StatusOK || a["pointsBalance"] != "600" || a["tier"] != "LOYALTY_TIER_BRONZE" {
		t.Fatalf("first credit: %d %s", credit.Status, credit.Body)
	}
	credit = sys.Do(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, []byte(`{"points":"500","reason":"order 42"}`))
	if a := credit.JSON(t)["account"].(map[string]any); a["pointsBalance"] != "1100" || a["tier"] != "LOYALTY_TIER_SILVER" || a["pointsEarnedTrailingYear"] != "1100" {
		t.Fatalf("second credit: %s, want 1100 points and SILVER", credit.Body)
	}
	redeem := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":redeem"), key, []byte(`{"points":"200","reward":"tote bag"}`))
	got := redeem.JSON(t)
	if redeem.Status != http.StatusOK || got["entry"].(map[string]any)["points"] != "-200" ||
		got["account"].(map[string]any)["pointsBalance"] != "900" || got["account"].(map[string]any)["tier"] != "LOYALTY_TIER_SILVER" {
		t.Fatalf("redeem: %d %s, want balance 900, tier kept (earned points set it)", redeem.Status, redeem.Body)
	}
	short := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":redeem"), key, []byte(`{"points":"5000","reward":"bike"}`))
	if short.Status != http.StatusBadRequest || short.ErrorStatus(t) != "FAILED_PRECONDITION" {
		t.Fatalf("redeem over the balance: %d %s, want 400 FAILED_PRECONDITION", short.Status, short.Body)
	}
	acct := sys.Do(t, http.MethodGet, loyaltyPath(customer, ""), key, nil).JSON(t)
	var reasons []string
	for _, e := range acct["ledger"].([]any) {
		reasons = append(reasons, e.(map[string]any)["reason"].(string))
	}
	if acct["pointsBalance"] != "900" || !slices.Equal(reasons, []string{"tote bag", "order 42", "welcome"}) {
		t.Fatalf("account = balance %v, ledger %v; want 900 and the three entries newest first", acct["pointsBalance"], reasons)
	}

	// The tier change was announced once.
	if tierEvents := len(sys.events(t, tenant, "marketing.loyalty.tier_changed")); tierEvents != 1 {
		t.Fatalf("%d tier_changed events, want 1", tierEvents)
	}

	for _, tt := range []struct{ name, path, body, field string }{
		{"zero points", ":redeem", `{"points":"0","reward":"x"}`, "points"},
		{"negative credit", ":credit", `{"points":"-5","reason":"x"}`, "points"},
		{"no reward", ":redeem", `{"points":"1"}`, "reward"},
		{"no reason", ":credit", `{"points":"1"}`, "reason"},
	} {
		r := sys.Do(t, http.MethodPost, loyaltyPath(customer, tt.path), key, []byte(tt.body))
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), tt.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.name, r.Status, r.Body, tt.field)
		}
	}
	if r := sys.Do(t, http.MethodGet, loyaltyPath("not-a-customer", ""), key, nil); r.Status != http.StatusBadRequest {
		t.Errorf("bad customer id: %d, want 400", r.Status)
	}
}

func TestConcurrentRedemptionsNeverOverdraw(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	customer := sys.newCustomer(t, key)
	if r := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, []byte(`{"points":"100","reason":"start"}`)); r.Status != http.StatusOK {
		t.Fatalf("credit: %d %s", r.Status, r.Body)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 50 {
		wg.Go(func() {
			r := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":redeem"), key, []byte(fmt.Sprintf(`{"points":"10","reward":"r%d"}`, i)))
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	acct := sys.Do(t, http.MethodGet, loyaltyPath(customer, ""), key, nil).JSON(t)
	debits := 0
	for _, e := range acct["ledger"].([]any) {
		if e.(map[string]any)["points"] == "-10" {
			debits++
		}
	}
	// proto3 JSON leaves out fields at their default: a zero balance is absent.
	if statuses[http.StatusOK] != 10 || statuses[http.StatusBadRequest] != 40 || acct["pointsBalance"] != nil || debits != 10 {
		t.Fatalf("50 redemptions of 10 against 100: statuses %v, balance %v, %d debits; want 10 OK, 40 refused, 0, 10",
			statuses, acct["pointsBalance"], debits)
	}
}

func TestLoyaltyOverGRPCAndIsolation(t *testing.T) {
	sys := startSystem(t)
	_, owner := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	customer := sys.newCustomer(t, owner)
	client, ctx := sys.marketing(owner)
	// A known customer who has earned nothing has a balance of 0: a redemption is refused as over
	// the balance, not as a missing resource (an unknown customer is NOT_FOUND).
	_, err := client.RedeemPoints(ctx, &marketingv1.RedeemPointsRequest{CustomerId: customer, Points: 1, Reward: "x"})
	if reason, meta := errorInfo(err); status.Code(err) != codes.FailedPrecondition || reason != "INSUFFICIENT_POINTS" || meta["balance"] != "0" {
		t.Fatalf("redeem with no points earned yet: %v, want FailedPrecondition INSUFFICIENT_POINTS", err)
	}
	if _, err := client.CreditPoints(ctx, &marketingv1.CreditPointsRequest{CustomerId: customer, Points: 50, Reason: "goodwill"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RedeemPoints(ctx, &marketingv1.RedeemPointsRequest{CustomerId: customer, Points: 51, Reward: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("redeem over the balance: %v, want FailedPrecondition", err)
	}
	acct, err := client.GetLoyaltyAccount(ctx, &marketingv1.GetLoyaltyAccountRequest{CustomerId: customer})
	if err != nil || acct.GetAccount().GetPointsBalance() != 50 {
		t.Fatalf("account: %v %v", acct, err)
	}

	if r := sys.Do(t, http.MethodGet, loyaltyPath(customer, ""), stranger, nil); r.Status != http.StatusNotFound {
		t.Errorf("another tenant's GET: %d, want 404", r.Status)
	}
	if r := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":redeem"), stranger, []byte(`{"points":"10","reward":"x"}`)); r.Status != http.StatusNotFound {
		t.Errorf("another tenant's redeem: %d, want 404", r.Status)
	}
	// A credit under another tenant opens that tenant's own account; the owner's is untouched.
	sys.Do(t, http.MethodPost, loyaltyPath(customer, ":credit"), stranger, []byte(`{"points":"999","reason":"x"}`))
	if got := sys.Do(t, http.MethodGet, loyaltyPath(customer, ""), owner, nil).JSON(t)["pointsBalance"]; got != "50" {
		t.Errorf("owner's balance after another tenant's credit = %v, want 50", got)
	}
}
