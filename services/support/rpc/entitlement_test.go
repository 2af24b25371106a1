package rpc_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// TestSupportEntitlementThroughProduct opens tickets about a product against a product service
// that knows one grant: the customer holding it is entitled (the ticket names the grant, and the
// check is a traced gRPC call under the ticket's trace); another customer is refused with
// FAILED_PRECONDITION and nothing is written.
func TestSupportEntitlementThroughProduct(t *testing.T) {
	product, buyer, stranger, grant := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	products := &fakeProduct{products: map[string]bool{product: true}, grants: map[string]string{buyer + "/" + product: grant}}
	sys := startSystem(t, func(o *servicetest.Options) { o.Fakes = append(o.Fakes, products.register) })
	// The check is made with the caller's key, so it needs the product scope too.
	tenant, key := sys.NewKey(t, "", "support.read", "support.write", "product.read", "marketing.read")

	tk := sys.createTicket(t, key, `{"customerId":"`+buyer+`","productId":"`+product+`","subject":"Reports are empty"}`)
	if tk["entitlementId"] != grant || tk["productId"] != product {
		t.Fatalf("ticket = %v, want entitlement %v", tk, grant)
	}
	// Client spans: each ends before its caller goes on, where a server span can end after the
	// caller has its answer.
	var createTrace, checkTrace string
	for _, sp := range sys.Suite.Spans.Ended() {
		if sp.SpanKind().String() != "client" {
			continue
		}
		switch sp.Name() {
		case "crm.support.v1.SupportService/CreateTicket":
			createTrace = sp.SpanContext().TraceID().String()
		case "crm.product.v1.ProductService/CheckEntitlement":
			checkTrace = sp.SpanContext().TraceID().String()
		}
	}
	if createTrace == "" || checkTrace != createTrace {
		t.Errorf("CheckEntitlement client span in trace %q, want the CreateTicket trace %q", checkTrace, createTrace)
	}

	keysBefore, eventsBefore := sys.Suite.Footprint(t, "support", tenant)
	r := sys.Do(t, http.MethodPost, "/v1/tickets", key, []byte(`{"customerId":"`+stranger+`","productId":"`+product+`","subject":"x"}`))
	if r.Status != http.StatusBadRequest || r.ErrorStatus(t) != "FAILED_PRECONDITION" || errorReason(t, r) != "NOT_ENTITLED" {
		t.Fatalf("not entitled: %d %s, want 400 FAILED_PRECONDITION NOT_ENTITLED", r.Status, r.Body)
	}
	if keys, events := sys.Suite.Footprint(t, "support", tenant); keys != keysBefore || events != eventsBefore {
		t.Fatalf("refused ticket wrote %d keys and %d events", keys-keysBefore, events-eventsBefore)
	}
	if n := len(sys.events(t, tenant, "support.ticket.created")); n != 1 {
		t.Fatalf("%d created events, want 1", n)
	}
	want := []*productv1.CheckEntitlementRequest{{CustomerId: buyer, ProductId: product}, {CustomerId: stranger, ProductId: product}}
	if diff := cmp.Diff(want, products.asked(), protocmp.Transform()); diff != "" {
		t.Errorf("entitlement checks (-want +got):\n%s", diff)
	}
}

// TestSupportEntitlementProductDown: with the product service unreachable, a ticket about a
// product is UNAVAILABLE (503) and nothing is written; a ticket without a product still opens.
func TestSupportEntitlementProductDown(t *testing.T) {
	sys := startSystem(t, func(o *servicetest.Options) { o.Unreachable = []string{"product"} })
	tenant, key := sys.NewKey(t, "", supportScopes...)
	r := sys.Do(t, http.MethodPost, "/v1/tickets", key,
		[]byte(`{"customerId":"`+supportCustomer+`","productId":"`+uuid.NewString()+`","subject":"x"}`))
	if r.Status != http.StatusServiceUnavailable || r.ErrorStatus(t) != "UNAVAILABLE" || errorReason(t, r) != "PRODUCT_UNAVAILABLE" {
		t.Fatalf("product down: %d %s, want 503 UNAVAILABLE PRODUCT_UNAVAILABLE", r.Status, r.Body)
	}
	if keys, events := sys.Suite.Footprint(t, "support", tenant); keys != 0 || events != 0 {
		t.Fatalf("refused ticket wrote %d keys and %d events", keys, events)
	}
	sys.createTicket(t, key, `{"customerId":"`+supportCustomer+`","subject":"No product"}`)
}

// errorReason returns the ErrorInfo reason of an AIP-193 error body.
func errorReason(t *testing.T, r gatewaytest.Response) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		if dm := d.(map[string]any); dm["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			reason, _ := dm["reason"].(string)
			return reason
		}
	}
	return ""
}

// fakeProduct answers CheckEntitlement as the product service does: NOT_FOUND for a product it
// does not know, a grant id for a customer holding one, NO_SUBSCRIPTION otherwise.
type fakeProduct struct {
	productv1.UnimplementedProductServiceServer
	products map[string]bool
	grants   map[string]string // customer/product -> grant id

	mu     sync.Mutex
	checks []*productv1.CheckEntitlementRequest
}

// asked returns the checks the fake answered, in order.
func (f *fakeProduct) asked() []*productv1.CheckEntitlementRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*productv1.CheckEntitlementRequest(nil), f.checks...)
}

func (f *fakeProduct) register(r grpc.ServiceRegistrar) { productv1.RegisterProductServiceServer(r, f) }

func (f *fakeProduct) CheckEntitlement(_ context.Context, req *productv1.CheckEntitlementRequest) (*productv1.CheckEntitlementResponse, error) {
	f.mu.Lock()
	f.checks = append(f.checks, req)
	f.mu.Unlock()
	if !f.products[req.GetProductId()] {
		return nil, status.Error(codes.NotFound, "no such product")
	}
	if grant, ok := f.grants[req.GetCustomerId()+"/"+req.GetProductId()]; ok {
		return &productv1.CheckEntitlementResponse{Entitled: true, GrantId: grant}, nil
	}
	return &productv1.CheckEntitlementResponse{Reason: "NO_SUBSCRIPTION"}, nil
}
