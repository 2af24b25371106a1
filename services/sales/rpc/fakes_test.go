package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/auth"
	moneyarith "github.com/crmcycle/crm/pkg/money"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// record names a tenant's record in a fake.
type record struct{ tenant, id string }

// leadsFake stands in for marketing: GetLead answers with the leads a test put in it, and
// ResolveCustomer with one customer id per e-mail (a lead's, or one it registers), per tenant (the
// caller's, as the real interceptors authenticated it); with customer_id it attaches the e-mail
// to that customer, or refuses one of another customer as marketing does. Marketing's own registry is tested in
// marketing and across services in cmd/crm.
type leadsFake struct {
	marketingv1.UnimplementedMarketingServiceServer
	mu        sync.Mutex
	leads     map[record]*marketingv1.Lead
	customers map[record]string // (tenant, e-mail) -> customer id
	external  map[record]string // (tenant, external id) -> customer id
	origins   map[marketingv1.CustomerOrigin]int
	batches   int
	// denyBatches makes ResolveCustomers refuse the caller's key, as marketing does for a key
	// that lost marketing.read.
	denyBatches bool
}

func newLeadsFake() *leadsFake {
	return &leadsFake{leads: map[record]*marketingv1.Lead{}, customers: map[record]string{}, external: map[record]string{}}
}

// link gives the customer of an e-mail an external id, as marketing's registry would.
func (f *leadsFake) link(tenant, email, externalID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.external[record{tenant, externalID}] = f.customers[record{tenant, email}]
}

func (f *leadsFake) ResolveCustomer(ctx context.Context, req *marketingv1.ResolveCustomerRequest) (*marketingv1.ResolveCustomerResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.GetEmail() == "" {
		id, ok := f.external[record{tenant, req.GetExternalId()}]
		if !ok {
			return nil, status.Error(codes.NotFound, "no such person")
		}
		return &marketingv1.ResolveCustomerResponse{Customer: &marketingv1.ResolvedCustomer{CustomerId: id}}, nil
	}
	key := record{tenant, strings.ToLower(strings.TrimSpace(req.GetEmail()))}
	id, known := f.customers[key]
	if req.GetCustomerId() != "" {
		return f.attach(tenant, key, req.GetCustomerId())
	}
	if !known {
		id = uuid.Must(uuid.NewV7()).String()
		f.customers[key] = id
	}
	return &marketingv1.ResolveCustomerResponse{Customer: &marketingv1.ResolvedCustomer{CustomerId: id, Created: !known}}, nil
}

// attach gives the e-mail of key to customer, unless another customer has it (409
// CUSTOMER_EMAIL_EXISTS naming them) or the fake knows no such customer (404). Called under f.mu.
func (f *leadsFake) attach(tenant string, key record, customer string) (*marketingv1.ResolveCustomerResponse, error) {
	known := false
	for k, id := range f.customers {
		known = known || (k.tenant == tenant && id == customer)
	}
	if !known {
		return nil, status.Error(codes.NotFound, "customer not found")
	}
	if owner, ok := f.customers[key]; ok && owner != customer {
		st, err := status.New(codes.AlreadyExists, "the e-mail belongs to another customer").WithDetails(
			&errdetails.ErrorInfo{Reason: "CUSTOMER_EMAIL_EXISTS", Domain: "marketing.crm", Metadata: map[string]string{"customer_id": owner}})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	f.customers[key] = customer
	return &marketingv1.ResolveCustomerResponse{Customer: &marketingv1.ResolvedCustomer{CustomerId: customer}}, nil
}

// customerOf is who the fake registry has an e-mail of tenant for ("" for nobody).
func (f *leadsFake) customerOf(tenant, email string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.customers[record{tenant, email}]
}

// ResolveCustomers resolves each person as ResolveCustomer does, keeping an external id on the
// e-mail's customer (an external id of another customer is the item's CUSTOMER_IDENTITY_CONFLICT),
// and counts the calls and the people registered with each origin.
func (f *leadsFake) ResolveCustomers(ctx context.Context, req *marketingv1.ResolveCustomersRequest) (*marketingv1.ResolveCustomersResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	if n := len(req.GetRequests()); n == 0 || n > 1000 {
		return nil, status.Error(codes.InvalidArgument, "1 to 1,000 requests")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.denyBatches {
		return nil, status.Error(codes.PermissionDenied, "the API key lacks the scope this call needs")
	}
	f.batches++
	out := make([]*marketingv1.ResolvedCustomer, len(req.GetRequests()))
	for i, r := range req.GetRequests() {
		email := strings.ToLower(strings.TrimSpace(r.GetEmail()))
		byEmail, known := f.customers[record{tenant, email}]
		byExternal, knownExternal := f.external[record{tenant, r.GetExternalId()}]
		switch {
		case known && knownExternal && byEmail != byExternal:
			st, _ := status.New(codes.InvalidArgument, "the e-mail and the external id belong to two customers").
				WithDetails(&errdetails.ErrorInfo{Reason: "CUSTOMER_IDENTITY_CONFLICT", Domain: "marketing.crm"})
			out[i] = &marketingv1.ResolvedCustomer{Error: st.Proto()}
			continue
		case !known && knownExternal:
			byEmail, known = byExternal, true
		case !known:
			byEmail = uuid.Must(uuid.NewV7()).String()
			if f.origins == nil {
				f.origins = map[marketingv1.CustomerOrigin]int{}
			}
			f.origins[r.GetOrigin()]++
		}
		if email != "" {
			f.customers[record{tenant, email}] = byEmail
		}
		if r.GetExternalId() != "" {
			f.external[record{tenant, r.GetExternalId()}] = byEmail
		}
		out[i] = &marketingv1.ResolvedCustomer{CustomerId: byEmail, Created: !known}
	}
	return &marketingv1.ResolveCustomersResponse{Customers: out}, nil
}

// registered is how many people ResolveCustomers registered with an origin, and in how many calls.
func (f *leadsFake) registered(origin marketingv1.CustomerOrigin) (people, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.origins[origin], f.batches
}

// GetCustomerIdentity answers for the customers the fake resolved or captured in the caller's
// tenant; anyone else is NOT_FOUND.
func (f *leadsFake) GetCustomerIdentity(ctx context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, id := range f.customers {
		if key.tenant == tenant && id == req.GetCustomerId() {
			return &marketingv1.GetCustomerIdentityResponse{Customer: &marketingv1.CustomerIdentity{Id: id}}, nil
		}
	}
	return nil, status.Error(codes.NotFound, "customer not found")
}

// add keeps a captured lead of tenant, with a new id and customer id, and returns it.
func (f *leadsFake) add(tenant string, lead *marketingv1.Lead) *marketingv1.Lead {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := proto.CloneOf(lead)
	l.Id, l.CustomerId = uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	key := record{tenant, strings.ToLower(l.GetEmail())}
	if id, ok := f.customers[key]; ok && l.GetEmail() != "" {
		l.CustomerId = id // captured after a contact: the registry's customer
	} else if l.GetEmail() != "" {
		f.customers[key] = l.CustomerId
	}
	l.Status = marketingv1.LeadStatus_LEAD_STATUS_NEW
	f.leads[record{tenant, l.GetId()}] = l
	return proto.CloneOf(l)
}

// disqualify marks a lead DISQUALIFIED, as marketing's :disqualify does.
func (f *leadsFake) disqualify(tenant, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leads[record{tenant, id}].Status = marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED
}

func (f *leadsFake) GetLead(ctx context.Context, req *marketingv1.GetLeadRequest) (*marketingv1.GetLeadResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lead, ok := f.leads[record{tenant, req.GetId()}]
	if !ok {
		return nil, status.Error(codes.NotFound, "lead not found")
	}
	return &marketingv1.GetLeadResponse{Lead: proto.CloneOf(lead)}, nil
}

// catalogFake stands in for product: QuoteLineItems prices the products a test put in it, per
// tenant, the way product quotes (the price in the asked currency, the discount rounded down; a
// missing or archived product is FAILED_PRECONDITION naming the line).
type catalogFake struct {
	productv1.UnimplementedProductServiceServer
	mu       sync.Mutex
	products map[record]*productv1.Product
}

func newCatalogFake() *catalogFake { return &catalogFake{products: map[record]*productv1.Product{}} }

// add lists a product of tenant at 10.50 EUR (12 USD) and returns its id.
func (f *catalogFake) add(tenant, sku, name string, period productv1.BillingPeriod) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &productv1.Product{
		Id: uuid.Must(uuid.NewV7()).String(), Sku: sku, DisplayName: name, BillingPeriod: period, Active: proto.Bool(true),
		Price:            &typev1.Money{CurrencyCode: "EUR", Units: 10, Nanos: 500_000_000},
		AdditionalPrices: []*typev1.Money{{CurrencyCode: "USD", Units: 12}},
	}
	f.products[record{tenant, p.GetId()}] = p
	return p.GetId()
}

// setPrice changes a product's list price.
func (f *catalogFake) setPrice(tenant, id string, price *typev1.Money) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.products[record{tenant, id}].Price = price
}

// archive takes a product off sale.
func (f *catalogFake) archive(tenant, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.products[record{tenant, id}].ArchiveTime = timestamppb.Now()
}

func (f *catalogFake) QuoteLineItems(ctx context.Context, req *productv1.QuoteLineItemsRequest) (*productv1.QuoteLineItemsResponse, error) {
	tenant, err := auth.TenantID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &productv1.QuoteLineItemsResponse{}
	var totals []*typev1.Money
	for i, it := range req.GetItems() {
		p := f.products[record{tenant, it.GetProductId()}]
		unit := priceIn(p, req.GetCurrencyCode())
		if p == nil || p.GetArchiveTime() != nil || unit == nil {
			st, err := status.New(codes.FailedPrecondition, fmt.Sprintf("line %d: the product cannot be quoted", i)).WithDetails(
				&errdetails.ErrorInfo{Reason: "PRODUCT_NOT_QUOTABLE", Domain: "product.crm", Metadata: map[string]string{"line": fmt.Sprint(i)}})
			if err != nil {
				return nil, err
			}
			return nil, st.Err()
		}
		// Exact, as product's quote is: a total beyond a Money is an error, never a wrap.
		gross, err := moneyarith.Times(unit, it.GetQuantity())
		if err != nil {
			return nil, err
		}
		total, err := moneyarith.LessPercent(gross, it.GetDiscountPercent())
		if err != nil {
			return nil, err
		}
		totals = append(totals, total)
		out.Lines = append(out.Lines, &productv1.QuotedLine{
			ProductId: p.GetId(), Sku: p.GetSku(), DisplayName: p.GetDisplayName(), Quantity: it.GetQuantity(), UnitPrice: unit,
			DiscountPercent: it.GetDiscountPercent(), Total: total, BillingPeriod: p.GetBillingPeriod(),
		})
	}
	out.Total, err = moneyarith.Sum(req.GetCurrencyCode(), totals...)
	return out, err
}

// priceIn is the product's price in currency, nil when it has none.
func priceIn(p *productv1.Product, currency string) *typev1.Money {
	for _, m := range append([]*typev1.Money{p.GetPrice()}, p.GetAdditionalPrices()...) {
		if m.GetCurrencyCode() == currency {
			return m
		}
	}
	return nil
}

func money(currency string, nanos int64) *typev1.Money {
	return &typev1.Money{CurrencyCode: currency, Units: nanos / 1e9, Nanos: int32(nanos % 1e9)}
}
