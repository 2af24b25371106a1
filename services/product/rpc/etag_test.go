package rpc_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// reasonOf is a gRPC error's ErrorInfo reason.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// wantEtagMismatch fails unless err is ABORTED with the reason ETAG_MISMATCH.
func wantEtagMismatch(t *testing.T, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.Aborted || reasonOf(err) != "ETAG_MISMATCH" {
		t.Fatalf("%s: %v (reason %q), want ABORTED ETAG_MISMATCH", what, err, reasonOf(err))
	}
}

// newSubscriptions places an order of product for each of n new customers and returns their
// subscriptions, once the order consumer has made them.
func (s *system) newSubscriptions(t *testing.T, tenant, key, product string, n int) []*productv1.Subscription {
	t.Helper()
	customers := make([]string, n)
	for i := range customers {
		customers[i] = uuid.NewString()
		s.placeOrder(t, tenant, customers[i], 1, &salesv1.OrderLine{ProductId: product, Quantity: 1, Recurring: true})
	}
	client, ctx := s.product(key)
	out := make([]*productv1.Subscription, n)
	for i, customer := range customers {
		out[i] = waitFor(t, "the customer's subscription", func() *productv1.Subscription {
			r, err := client.ListSubscriptions(ctx, &productv1.ListSubscriptionsRequest{Filter: `customer_id = "` + customer + `"`})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.GetSubscriptions()) != 1 {
				return nil
			}
			return r.GetSubscriptions()[0]
		}, func(sub *productv1.Subscription) bool { return sub != nil })
	}
	return out
}

// TestCustomMethodsCheckTheEtag: each custom method of product given a stale etag is ABORTED
// ETAG_MISMATCH and changes nothing, even where its state check would refuse it or there is
// nothing to do; with the current etag it goes through.
func TestCustomMethodsCheckTheEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "product.read", "product.write")
	client, ctx := sys.product(key)
	basic := sys.createProduct(t, key, productBody("ETAG", "Etag", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	// A subscription renewed once: "1" is a stale etag of it.
	newSub := func(t *testing.T) (string, string) {
		sub := sys.newSubscriptions(t, tenant, key, basic, 1)[0]
		if _, err := client.RenewSubscription(ctx, &productv1.RenewSubscriptionRequest{Id: sub.GetId()}); err != nil {
			t.Fatal(err)
		}
		return sub.GetId(), "1"
	}
	getSub := func(id string) (proto.Message, error) {
		r, err := client.GetSubscription(ctx, &productv1.GetSubscriptionRequest{Id: id})
		return r.GetSubscription(), err
	}
	cancel := func(id, etag string) error {
		_, err := client.CancelSubscription(ctx, &productv1.CancelSubscriptionRequest{Id: id, Etag: etag})
		return err
	}
	renew := func(id, etag string) error {
		_, err := client.RenewSubscription(ctx, &productv1.RenewSubscriptionRequest{Id: id, Etag: etag})
		return err
	}
	archive := func(id, etag string) error {
		_, err := client.ArchiveProduct(ctx, &productv1.ArchiveProductRequest{Id: id, Etag: etag})
		return err
	}
	for _, tc := range []struct {
		method string
		// create makes a resource the call succeeds on; it returns its id and an etag it no longer has.
		create func(t *testing.T) (id, stale string)
		get    func(id string) (proto.Message, error)
		call   func(id, etag string) error
		// prepare (if set) brings the resource, after call, to where again refuses it with the
		// reason refusal ("": again is no error and changes nothing).
		prepare func(t *testing.T, id string)
		again   func(id, etag string) error
		refusal string
		event   string
	}{
		{"CancelSubscription", newSub, getSub, cancel, nil, cancel, "SUBSCRIPTION_NOT_ACTIVE",
			"product.subscription.canceled"},
		{"RenewSubscription", newSub, getSub, renew, func(t *testing.T, id string) {
			if err := cancel(id, ""); err != nil {
				t.Fatal(err)
			}
		}, renew, "SUBSCRIPTION_NOT_ACTIVE", "product.subscription.renewed"},
		{"ArchiveProduct", func(t *testing.T) (string, string) {
			p := sys.createProduct(t, key, productBody("ETAG-ARCHIVE", "Etag archive", "BILLING_PERIOD_MONTHLY"))
			if _, err := client.UpdateProduct(ctx, &productv1.UpdateProductRequest{Product: &productv1.Product{
				Id: p["id"].(string), Category: "archived-soon"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"category"}}}); err != nil {
				t.Fatal(err)
			}
			return p["id"].(string), "1"
		}, func(id string) (proto.Message, error) {
			r, err := client.GetProduct(ctx, &productv1.GetProductRequest{Id: id})
			return r.GetProduct(), err
		}, archive, nil, archive, "", "product.product.archived"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			id, stale := tc.create(t)
			events := func() int { return len(sys.Suite.Events(t, "product", tenant, tc.event)) }
			get := func() proto.Message {
				t.Helper()
				m, err := tc.get(id)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			unchanged := func(what string, want proto.Message) {
				t.Helper()
				if got := get(); !proto.Equal(got, want) {
					t.Fatalf("%s changed the resource:\n%v\nwas\n%v", what, got, want)
				}
			}
			before, eventsBefore := get(), events()
			wantEtagMismatch(t, "stale etag", tc.call(id, stale))
			unchanged("a stale etag", before)
			if n := events(); n != eventsBefore {
				t.Fatalf("%d %s events after a stale etag, want %d", n, tc.event, eventsBefore)
			}

			current := etagOf(before)
			if err := tc.call(id, current); err != nil {
				t.Fatalf("current etag %q: %v", current, err)
			}
			if n := events(); n != eventsBefore+1 {
				t.Fatalf("%d %s events after the change, want %d", n, tc.event, eventsBefore+1)
			}
			if tc.prepare != nil {
				tc.prepare(t, id)
			}
			after := get()
			if etagOf(after) == current {
				t.Fatalf("etag still %q after the change", current)
			}

			// The etag is checked before the state: a stale one is ETAG_MISMATCH even where the
			// call is refused, or has nothing to do, anyway.
			wantEtagMismatch(t, "again with a stale etag", tc.again(id, current))
			unchanged("again with a stale etag", after)
			err := tc.again(id, etagOf(after))
			if reasonOf(err) != tc.refusal || (tc.refusal == "") != (err == nil) {
				t.Fatalf("again with the current etag: %v (reason %q), want reason %q", err, reasonOf(err), tc.refusal)
			}
			unchanged("again", after)
			if n := events(); n != eventsBefore+1 {
				t.Fatalf("%d %s events, want %d", n, tc.event, eventsBefore+1)
			}
		})
	}
}

// etagOf is a resource's etag.
func etagOf(m proto.Message) string { return m.(interface{ GetEtag() string }).GetEtag() }

// TestCancelAndRenewOnOneEtag: a cancellation and a renewal of one subscription sent at once with
// its etag: one goes through, the other is ABORTED ETAG_MISMATCH (not SUBSCRIPTION_NOT_ACTIVE,
// nor a renewal on top of the cancellation), and the subscription ends as the one that went
// through left it.
func TestCancelAndRenewOnOneEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "product.read", "product.write")
	client, ctx := sys.product(key)
	basic := sys.createProduct(t, key, productBody("ETAG-RACE", "Etag race", "BILLING_PERIOD_MONTHLY"))["id"].(string)
	const rounds = 20
	for round, sub := range sys.newSubscriptions(t, tenant, key, basic, rounds) {
		var results [2]*productv1.Subscription
		errs := servicetest.AtOnce(func() error {
			r, err := client.CancelSubscription(ctx, &productv1.CancelSubscriptionRequest{Id: sub.GetId(), Etag: sub.GetEtag()})
			results[0] = r.GetSubscription()
			return err
		}, func() error {
			r, err := client.RenewSubscription(ctx, &productv1.RenewSubscriptionRequest{Id: sub.GetId(), Etag: sub.GetEtag()})
			results[1] = r.GetSubscription()
			return err
		})
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("round %d: cancel, renew = %v, %v: want exactly one to succeed", round, errs[0], errs[1])
		}
		wantEtagMismatch(t, fmt.Sprintf("round %d: the other call", round), errs[1-winner])
		got, err := client.GetSubscription(ctx, &productv1.GetSubscriptionRequest{Id: sub.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetSubscription(), results[winner]) {
			t.Fatalf("round %d: subscription is %v, want the winner's %v", round, got.GetSubscription(), results[winner])
		}
	}
	canceled := len(sys.Suite.Events(t, "product", tenant, "product.subscription.canceled"))
	renewed := len(sys.Suite.Events(t, "product", tenant, "product.subscription.renewed"))
	if canceled+renewed != rounds {
		t.Fatalf("%d canceled and %d renewed events for %d subscriptions, one change each", canceled, renewed, rounds)
	}
}

// TestChangesWithoutAnEtagDoNotRace: product updates and an archive sent at once without an etag
// all apply, one after the other (a lost race reads the product again), where they answered
// ETAG_MISMATCH for an etag nobody sent: the product ends with every change, its etag one step
// per change.
func TestChangesWithoutAnEtagDoNotRace(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "product.read", "product.write")
	client, ctx := sys.product(key)
	for round := range 10 {
		id := sys.createProduct(t, key, productBody(fmt.Sprintf("NOETAG-%d", round), "No etag", "BILLING_PERIOD_MONTHLY"))["id"].(string)
		update := func(p *productv1.Product, field string) func() error {
			return func() error {
				_, err := client.UpdateProduct(ctx, &productv1.UpdateProductRequest{Product: p, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
				return err
			}
		}
		// The archive may come before or after the updates; after it they are PRODUCT_ARCHIVED.
		errs := servicetest.AtOnce(update(&productv1.Product{Id: id, DisplayName: "Renamed"}, "display_name"),
			update(&productv1.Product{Id: id, Description: "Described"}, "description"),
			func() error {
				_, err := client.ArchiveProduct(ctx, &productv1.ArchiveProductRequest{Id: id})
				return err
			})
		if errs[2] != nil {
			t.Fatalf("round %d: archive: %v", round, errs[2])
		}
		r, err := client.GetProduct(ctx, &productv1.GetProductRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		p, changes := r.GetProduct(), 1
		for i, applied := range []bool{p.GetDisplayName() == "Renamed", p.GetDescription() == "Described"} {
			switch {
			case errs[i] == nil && applied:
				changes++
			case reasonOf(errs[i]) == "PRODUCT_ARCHIVED" && !applied:
			default:
				t.Fatalf("round %d: update %d answered %v, applied %v", round, i, errs[i], applied)
			}
		}
		if want := strconv.Itoa(1 + changes); p.GetEtag() != want || p.GetArchiveTime() == nil {
			t.Fatalf("round %d: etag %s, archived %v, want etag %s after %d changes, archived", round, p.GetEtag(), p.GetArchiveTime() != nil, want, changes)
		}
	}
}
