package rpc_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// supportWrite is one of support's writes about a customer, over REST and over gRPC.
type supportWrite struct {
	name, path, body string // body: %s is the customer id
	field            string // the REST field violation
	grpc             func(ctx context.Context, c supportv1.SupportServiceClient, customer string) error
}

var supportWrites = []supportWrite{
	{"ticket", "/v1/tickets", `{"customerId":"%s","subject":"It broke"}`, "ticket.customerId",
		func(ctx context.Context, c supportv1.SupportServiceClient, id string) error {
			_, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: id, Subject: "It broke"}})
			return err
		}},
	{"nps", "/v1/npsResponses", `{"customerId":"%s","score":9}`, "npsResponse.customerId",
		func(ctx context.Context, c supportv1.SupportServiceClient, id string) error {
			_, err := c.RecordNpsResponse(ctx, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{CustomerId: id, Score: 9}})
			return err
		}},
}

// TestWritesAboutACustomerNeedTheRegistry: a ticket or an NPS answer about a customer marketing's
// registry does not have is 404 naming the field, about a merged one 400 CUSTOMER_MERGED naming the
// survivor, and nothing at all is written; with marketing down it is 503 with Retry-After.
func TestWritesAboutACustomerNeedTheRegistry(t *testing.T) {
	store := redistest.NewServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: store.URL[len("redis://"):]})
	bus := redis.NewClient(&redis.Options{Addr: store.URL[len("redis://"):], PoolSize: 64})
	t.Cleanup(func() { _, _ = rdb.Close(), bus.Close() })
	sys := startSystem(t, func(o *servicetest.Options) { o.Redis, o.BusRedis = rdb, bus })
	_, key := sys.NewKey(t, "", supportScopes...)
	client, ctx := sys.support(key)
	unknown, merged, survivor := uuid.NewString(), uuid.NewString(), uuid.NewString()
	sys.registry.Forget(unknown)
	sys.registry.Merge(merged, survivor)

	for _, w := range supportWrites {
		for _, r := range []struct {
			what, customer, reason string
			code                   int
			grpcCode               codes.Code
		}{
			{"unknown", unknown, "CUSTOMER_NOT_FOUND", http.StatusNotFound, codes.NotFound},
			{"merged", merged, "CUSTOMER_MERGED", http.StatusBadRequest, codes.FailedPrecondition},
		} {
			t.Run(w.name+" ("+r.what+")", func(t *testing.T) {
				before := redistest.Take(t, rdb, redistest.BusKeys...)
				resp := sys.Do(t, http.MethodPost, w.path, key, []byte(fmtID(w.body, r.customer)))
				if resp.Status != r.code || !slices.Contains(resp.FieldViolations(t), w.field) {
					t.Errorf("REST: %d %s, want %d naming %s", resp.Status, resp.Body, r.code, w.field)
				}
				err := w.grpc(ctx, client, r.customer)
				if status.Code(err) != r.grpcCode || !hasReason(err, r.reason) {
					t.Errorf("gRPC: %v, want %s %s", err, r.grpcCode, r.reason)
				}
				if r.what == "merged" && !hasMetadata(err, "merged_into", survivor) {
					t.Errorf("gRPC: %v, want merged_into %s", status.Convert(err).Details(), survivor)
				}
				if changed := before.Changed(redistest.Take(t, rdb, redistest.BusKeys...)); len(changed) > 0 {
					t.Errorf("refused writes changed %d keys: %v", len(changed), changed)
				}
			})
		}
		if err := w.grpc(ctx, client, uuid.NewString()); err != nil {
			t.Errorf("%s of a customer the registry has: %v", w.name, err)
		}
	}
}

// TestWritesAboutACustomerWithMarketingDown: the customer cannot be checked, so nothing is
// written, and the caller hears 503 with Retry-After (never 500).
func TestWritesAboutACustomerWithMarketingDown(t *testing.T) {
	sys := startSystem(t, func(o *servicetest.Options) { o.Unreachable = []string{"marketing"} })
	tenant, key := sys.NewKey(t, "", supportScopes...)
	client, ctx := sys.support(key)
	for _, w := range supportWrites {
		keys, events := sys.Suite.Footprint(t, "support", tenant)
		resp := sys.Do(t, http.MethodPost, w.path, key, []byte(fmtID(w.body, uuid.NewString())))
		if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s over REST: %d (Retry-After %q) %s, want 503 with Retry-After", w.name, resp.Status, resp.Header.Get("Retry-After"), resp.Body)
		}
		if err := w.grpc(ctx, client, uuid.NewString()); status.Code(err) != codes.Unavailable {
			t.Errorf("%s over gRPC: %v, want UNAVAILABLE", w.name, err)
		}
		if k, e := sys.Suite.Footprint(t, "support", tenant); k != keys || e != events {
			t.Errorf("%s with marketing down wrote %d keys and %d events", w.name, k-keys, e-events)
		}
	}
}

func fmtID(body, id string) string { return strings.Replace(body, "%s", id, 1) }

// errorInfo is a gRPC error's ErrorInfo, if any.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func hasReason(err error, reason string) bool { return errorInfo(err).GetReason() == reason }

func hasMetadata(err error, key, value string) bool {
	return errorInfo(err).GetMetadata()[key] == value
}
