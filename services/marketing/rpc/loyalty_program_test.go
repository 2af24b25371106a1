package rpc_test

import (
	"net/http"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestLoyaltyProgramOverREST(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, reader := sys.NewKey(t, tenant, "marketing.read")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")

	def := sys.Do(t, http.MethodGet, "/v1/loyaltyProgram", reader, nil)
	if def.Status != http.StatusOK || def.JSON(t)["silverPoints"] != "1000" || def.JSON(t)["pointsPerUnit"] != "1" || def.JSON(t)["etag"] != "0" {
		t.Fatalf("default programme: %d %s", def.Status, def.Body)
	}
	upd := sys.Do(t, http.MethodPatch, "/v1/loyaltyProgram?updateMask=silverPoints,pointsPerUnit,currencyCode", key,
		[]byte(`{"silverPoints":"100","pointsPerUnit":"10","currencyCode":"EUR","etag":"0"}`))
	if upd.Status != http.StatusOK || upd.JSON(t)["silverPoints"] != "100" || upd.JSON(t)["goldPoints"] != "5000" || upd.JSON(t)["etag"] != "1" {
		t.Fatalf("update: %d %s", upd.Status, upd.Body)
	}
	customer := sys.newCustomer(t, key)
	credit := sys.Do(t, http.MethodPost, loyaltyPath(customer, ":credit"), key, []byte(`{"points":"150","reason":"welcome"}`))
	if credit.Status != http.StatusOK || credit.JSON(t)["account"].(map[string]any)["tier"] != "LOYALTY_TIER_SILVER" {
		t.Fatalf("credit under the tenant's thresholds: %d %s, want SILVER at 150 points", credit.Status, credit.Body)
	}
	before, beforeEvents := sys.footprint(t, tenant)
	for _, tt := range []struct {
		name, key, query, body string
		code                   int
		status, field          string
	}{
		{"thresholds that do not rise", key, "goldPoints", `{"goldPoints":"50"}`, 400, "INVALID_ARGUMENT", "loyaltyProgram"},
		{"a currency that is not a code", key, "currencyCode", `{"currencyCode":"euro"}`, 400, "INVALID_ARGUMENT", "loyaltyProgram.currencyCode"},
		{"a negative rate", key, "pointsPerUnit", `{"pointsPerUnit":"-1"}`, 400, "INVALID_ARGUMENT", "loyaltyProgram.pointsPerUnit"},
		{"an output-only field", key, "etag", `{"etag":"7"}`, 400, "INVALID_ARGUMENT", "updateMask"},
		{"a stale etag", key, "silverPoints", `{"silverPoints":"200","etag":"0"}`, 409, "ABORTED", ""},
		{"a read-only key", reader, "silverPoints", `{"silverPoints":"200"}`, 403, "PERMISSION_DENIED", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sys.Do(t, http.MethodPatch, "/v1/loyaltyProgram?updateMask="+tt.query, tt.key, []byte(tt.body))
			if r.Status != tt.code || r.ErrorStatus(t) != tt.status {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.code, tt.status)
			}
			if tt.field != "" && !slices.Contains(r.FieldViolations(t), tt.field) {
				t.Fatalf("field violations %v, want %s", r.FieldViolations(t), tt.field)
			}
		})
	}
	if after, afterEvents := sys.footprint(t, tenant); after != before || afterEvents != beforeEvents {
		t.Fatalf("rejected updates wrote: keys %d -> %d, events %d -> %d", before, after, beforeEvents, afterEvents)
	}
	if r := sys.Do(t, http.MethodGet, "/v1/loyaltyProgram", stranger, nil); r.JSON(t)["silverPoints"] != "1000" {
		t.Fatalf("another tenant's programme: %s, want the defaults", r.Body)
	}

	client, ctx := sys.marketing(key)
	got, err := client.GetLoyaltyProgram(ctx, &marketingv1.GetLoyaltyProgramRequest{})
	if err != nil || got.GetLoyaltyProgram().GetPointsPerUnit() != 10 {
		t.Fatalf("gRPC get: %v %v", got, err)
	}
	if _, err := client.UpdateLoyaltyProgram(ctx, &marketingv1.UpdateLoyaltyProgramRequest{
		LoyaltyProgram: &marketingv1.LoyaltyProgram{PlatinumPoints: 10}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"platinum_points"}},
	}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC update with falling thresholds: %v, want InvalidArgument", err)
	}
}
