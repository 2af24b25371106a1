package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// customerWrite is one of marketing's writes about a customer, over REST and over gRPC.
type customerWrite struct {
	name       string
	path, body string // REST: path after /v1/customers/{id}
	grpc       func(ctx context.Context, c marketingv1.MarketingServiceClient, customer string) error
}

var customerWrites = []customerWrite{
	{"loyalty credit", "/loyalty:credit", `{"points":"10","reason":"goodwill"}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.CreditPoints(ctx, &marketingv1.CreditPointsRequest{CustomerId: id, Points: 10, Reason: "goodwill"})
			return err
		}},
	{"loyalty redeem", "/loyalty:redeem", `{"points":"1","reward":"mug"}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.RedeemPoints(ctx, &marketingv1.RedeemPointsRequest{CustomerId: id, Points: 1, Reward: "mug"})
			return err
		}},
	{"referral code", "/referralCodes", `{}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.CreateReferralCode(ctx, &marketingv1.CreateReferralCodeRequest{CustomerId: id})
			return err
		}},
	{"lifecycle move", "/lifecycle:move", `{"stage":"LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER","cause":"test"}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.MoveLifecycleStage(ctx, &marketingv1.MoveLifecycleStageRequest{CustomerId: id,
				Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, Cause: "test"})
			return err
		}},
	{"set at risk", "/lifecycle:setAtRisk", `{"reason":"test"}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.SetCustomerAtRisk(ctx, &marketingv1.SetCustomerAtRiskRequest{CustomerId: id, Reason: "test"})
			return err
		}},
	{"clear at risk", "/lifecycle:clearAtRisk", `{}`,
		func(ctx context.Context, c marketingv1.MarketingServiceClient, id string) error {
			_, err := c.ClearCustomerAtRisk(ctx, &marketingv1.ClearCustomerAtRiskRequest{CustomerId: id})
			return err
		}},
}

// errorInfo is a gRPC error's reason and metadata.
func errorInfo(err error) (string, map[string]string) {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return "", nil
}

// TestEveryCustomerWriteNeedsARegisteredCustomer walks marketing's writes about a customer with an
// unknown id, another tenant's customer and a merged customer, over REST and gRPC: 404
// CUSTOMER_NOT_FOUND naming the field, or 400 FAILED_PRECONDITION CUSTOMER_MERGED naming the
// survivor, and not one key of the whole Redis changed. Registered customers pass, right after
// their registration.
func TestEveryCustomerWriteNeedsARegisteredCustomer(t *testing.T) {
	store := redistest.NewServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: store.URL[len("redis://"):]})
	bus := redis.NewClient(&redis.Options{Addr: store.URL[len("redis://"):], PoolSize: 64})
	t.Cleanup(func() { _, _ = rdb.Close(), bus.Close() })
	sys := startSystem(t, func(o *servicetest.Options) { o.Redis, o.BusRedis = rdb, bus })
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	_, stranger := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)

	foreign := sys.newCustomer(t, stranger)
	survivor, merged := sys.newCustomer(t, key), sys.newCustomer(t, key)
	sys.OK(t, http.MethodPost, "/v1/customers/"+survivor+":merge", key, `{"mergedCustomerId":"`+merged+`"}`)
	// The merge's reaction (the survivor's lifecycle takes the merged one's history) runs on the
	// bus: wait for it, so the snapshots below see only what each refused write did.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var lc struct{ History []json.RawMessage }
		if err := json.Unmarshal(sys.Do(t, http.MethodGet, "/v1/customers/"+survivor+"/lifecycle", key, nil).Body, &lc); err != nil {
			t.Fatal(err)
		}
		if len(lc.History) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the survivor's lifecycle history %d entries a minute after the merge, want both customers'", len(lc.History))
		}
	}

	refusals := []struct {
		what, customer string
		code           int
		grpcCode       codes.Code
		reason         string
	}{
		{"unknown", uuid.NewString(), http.StatusNotFound, codes.NotFound, "CUSTOMER_NOT_FOUND"},
		{"another tenant's", foreign, http.StatusNotFound, codes.NotFound, "CUSTOMER_NOT_FOUND"},
		{"merged", merged, http.StatusBadRequest, codes.FailedPrecondition, "CUSTOMER_MERGED"},
	}
	for _, w := range customerWrites {
		for _, r := range refusals {
			t.Run(w.name+" ("+r.what+")", func(t *testing.T) {
				before := redistest.Take(t, rdb, redistest.BusKeys...)
				resp := sys.Do(t, http.MethodPost, "/v1/customers/"+r.customer+w.path, key, []byte(w.body))
				info := servicetestErrorInfo(t, resp.JSON(t))
				if resp.Status != r.code || info.reason != r.reason {
					t.Errorf("REST: %d %s, want %d %s", resp.Status, resp.Body, r.code, r.reason)
				}
				if !slices.Contains(resp.FieldViolations(t), "customerId") {
					t.Errorf("REST field violations %v, want customerId", resp.FieldViolations(t))
				}
				if r.reason == "CUSTOMER_MERGED" && info.metadata["merged_into"] != survivor {
					t.Errorf("REST metadata %v, want merged_into %s", info.metadata, survivor)
				}
				err := w.grpc(ctx, client, r.customer)
				reason, md := errorInfo(err)
				if status.Code(err) != r.grpcCode || reason != r.reason {
					t.Errorf("gRPC: %v, want %s %s", err, r.grpcCode, r.reason)
				}
				if r.reason == "CUSTOMER_MERGED" && md["merged_into"] != survivor {
					t.Errorf("gRPC metadata %v, want merged_into %s", md, survivor)
				}
				if changed := before.Changed(redistest.Take(t, rdb, redistest.BusKeys...)); len(changed) > 0 {
					t.Errorf("refused writes changed %d keys: %v", len(changed), changed)
				}
			})
		}
	}

	// Read after write: a customer registered a moment ago takes every write at once.
	for i := range 5 {
		customer := sys.captureLead(t, key, fmt.Sprintf(`{"email":"fresh%d@example.com"}`, i))["customerId"].(string)
		for _, w := range customerWrites {
			if err := w.grpc(ctx, client, customer); err != nil {
				t.Errorf("%s right after the capture: %v", w.name, err)
			}
		}
	}
}

type errInfo struct {
	reason   string
	metadata map[string]string
}

// servicetestErrorInfo is an AIP-193 REST error body's ErrorInfo.
func servicetestErrorInfo(t *testing.T, body map[string]any) errInfo {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if reason, ok := m["reason"].(string); ok {
			out := errInfo{reason: reason, metadata: map[string]string{}}
			md, _ := m["metadata"].(map[string]any)
			for k, v := range md {
				out.metadata[k], _ = v.(string)
			}
			return out
		}
	}
	return errInfo{}
}
