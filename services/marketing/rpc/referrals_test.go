package rpc_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestReferralCodes(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	referrer := sys.newCustomer(t, key)

	created := sys.Do(t, http.MethodPost, "/v1/customers/"+referrer+"/referralCodes", key, []byte(`{}`))
	rc := created.JSON(t)
	code, _ := rc["code"].(string)
	if created.Status != http.StatusOK || !regexp.MustCompile(`^[A-Z2-7]{8}$`).MatchString(code) || rc["customerId"] != referrer {
		t.Fatalf("create referral code: %d %s", created.Status, created.Body)
	}
	if other := sys.Do(t, http.MethodPost, "/v1/customers/"+referrer+"/referralCodes", key, []byte(`{}`)).JSON(t)["code"]; other == code {
		t.Fatal("two codes came out the same")
	}

	lead := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"friend@example.com","referralCode":"`+code+`","channel":"CHANNEL_REFERRAL"}`)).JSON(t)
	if lead["referrerCustomerId"] != referrer || lead["referralCode"] != code {
		t.Fatalf("lead captured with a code = %v, want referrer %s", lead, referrer)
	}
	// Codes are read in any case: the code in lower case is the same code.
	lower := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"lower@example.com","referralCode":"`+strings.ToLower(code)+`"}`)).JSON(t)
	if lower["referrerCustomerId"] != referrer || lower["referralCode"] != code {
		t.Fatalf("lead captured with the code in lower case = %v, want referrer %s and code %s", lower, referrer, code)
	}
	// A customer's own code refers nobody: the referrer captured as a lead with it keeps no code.
	referrerEmail := sys.OK(t, http.MethodGet, "/v1/customers/"+referrer+"/identity", key, "")["emails"].([]any)[0].(string)
	self := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"`+referrerEmail+`","referralCode":"`+code+`"}`)).JSON(t)
	if self["customerId"] != referrer || self["referrerCustomerId"] != nil || self["referralCode"] != nil {
		t.Fatalf("the referrer captured with its own code = %v, want customer %s with no referral", self, referrer)
	}
	// A known lead without a code gets the referrer on a later capture with one; one with a code keeps it.
	sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"late@example.com"}`))
	late := sys.Do(t, http.MethodPost, "/v1/leads", key, []byte(`{"email":"late@example.com","referralCode":"`+code+`"}`)).JSON(t)
	if late["referrerCustomerId"] != referrer {
		t.Fatalf("known lead captured again with a code = %v", late)
	}

	keysBefore, eventsBefore := sys.footprint(t, tenant)
	for _, tt := range []struct{ name, key, body string }{
		{"unknown code", key, `{"email":"x@example.com","referralCode":"AAAAAAAA"}`},
		{"malformed code", key, `{"email":"x@example.com","referralCode":"nope"}`},
		{"another tenant's code", stranger, `{"email":"x@example.com","referralCode":"` + code + `"}`},
	} {
		r := sys.Do(t, http.MethodPost, "/v1/leads", tt.key, []byte(tt.body))
		if r.Status != http.StatusBadRequest || !slices.Contains(r.FieldViolations(t), "lead.referralCode") {
			t.Errorf("%s: %d %s, want 400 naming lead.referral_code", tt.name, r.Status, r.Body)
		}
	}
	if keys, events := sys.footprint(t, tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused captures wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
	if r := sys.Do(t, http.MethodPost, "/v1/customers/nope/referralCodes", key, []byte(`{}`)); r.Status != http.StatusBadRequest {
		t.Errorf("bad customer id: %d, want 400", r.Status)
	}

	client, ctx := sys.marketing(key)
	grpcCode, err := client.CreateReferralCode(ctx, &marketingv1.CreateReferralCodeRequest{CustomerId: referrer})
	if err != nil || grpcCode.GetReferralCode().GetCustomerId() != referrer {
		t.Fatalf("gRPC create: %v %v", grpcCode, err)
	}
}
