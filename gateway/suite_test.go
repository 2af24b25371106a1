package gateway_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// call is one request that reached the fake service.
type call struct {
	method string
	// tenant is the caller's tenant, authenticated from the credential the gateway forwarded.
	tenant string
	// email is the captured lead's e-mail.
	email string
	// requestID is the x-request-id metadata the call arrived with.
	requestID string
}

// fakeMarketing stands in for the marketing service behind the gateway. It records every call that
// reaches it, so a test tells a request the gateway or the interceptors refused (the handler never
// ran) from one that went through.
type fakeMarketing struct {
	marketingv1.UnimplementedMarketingServiceServer
	mu    sync.Mutex
	calls []call
}

func (f *fakeMarketing) record(ctx context.Context, method, email string) int {
	p, _ := auth.FromContext(ctx)
	var requestID string
	if ids := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(ids) == 1 {
		requestID = ids[0]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{method: method, tenant: p.TenantID, email: email, requestID: requestID})
	return len(f.calls)
}

// rejectedEmail is an e-mail the fake refuses from its handler, as marketing refuses a malformed
// one: a client error the idempotency interceptor stores.
const rejectedEmail = "not-an-email"

// CaptureLead answers with a new id every time, so a replay that ran the handler again would differ.
func (f *fakeMarketing) CaptureLead(ctx context.Context, req *marketingv1.CaptureLeadRequest) (*marketingv1.CaptureLeadResponse, error) {
	n := f.record(ctx, "CaptureLead", req.GetLead().GetEmail())
	if req.GetLead().GetEmail() == rejectedEmail {
		return nil, apierr.New(apierr.InvalidArgument, "INVALID_EMAIL", "lead.email is not an e-mail address")
	}
	return &marketingv1.CaptureLeadResponse{Lead: &marketingv1.Lead{
		Id: "lead-" + strconv.Itoa(n), Email: req.GetLead().GetEmail()}}, nil
}

func (f *fakeMarketing) ListLeads(ctx context.Context, _ *marketingv1.ListLeadsRequest) (*marketingv1.ListLeadsResponse, error) {
	f.record(ctx, "ListLeads", "")
	return &marketingv1.ListLeadsResponse{}, nil
}

// leadEtag is the etag of every lead the fake has. UpdateLead and DeleteLead refuse another as
// marketing does (ABORTED ETAG_MISMATCH); a company of "contended" is a concurrent update
// (ABORTED CONCURRENT_UPDATE).
const leadEtag = "7"

var (
	errLeadEtag   = apierr.New(apierr.Aborted, apierr.ReasonEtagMismatch, "the lead changed since it was read; read it again and retry")
	errContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the lead kept changing concurrently; retry")
)

func (f *fakeMarketing) GetLead(ctx context.Context, req *marketingv1.GetLeadRequest) (*marketingv1.GetLeadResponse, error) {
	f.record(ctx, "GetLead", "")
	return &marketingv1.GetLeadResponse{Lead: &marketingv1.Lead{Id: req.GetId(), Etag: leadEtag}}, nil
}

func (f *fakeMarketing) UpdateLead(ctx context.Context, req *marketingv1.UpdateLeadRequest) (*marketingv1.UpdateLeadResponse, error) {
	f.record(ctx, "UpdateLead", "")
	switch {
	case req.GetLead().GetEtag() != "" && req.GetLead().GetEtag() != leadEtag:
		return nil, errLeadEtag
	case req.GetLead().GetCompany() == "contended":
		return nil, errContention
	}
	return &marketingv1.UpdateLeadResponse{Lead: &marketingv1.Lead{Id: req.GetLead().GetId(), Etag: leadEtag}}, nil
}

func (f *fakeMarketing) DeleteLead(ctx context.Context, req *marketingv1.DeleteLeadRequest) (*marketingv1.DeleteLeadResponse, error) {
	f.record(ctx, "DeleteLead", "")
	if req.GetEtag() != "" && req.GetEtag() != leadEtag {
		return nil, errLeadEtag
	}
	return &marketingv1.DeleteLeadResponse{}, nil
}

func (f *fakeMarketing) QualifyLead(ctx context.Context, req *marketingv1.QualifyLeadRequest) (*marketingv1.QualifyLeadResponse, error) {
	f.record(ctx, "QualifyLead", "")
	if req.GetEtag() != "" && req.GetEtag() != leadEtag {
		return nil, errLeadEtag
	}
	return &marketingv1.QualifyLeadResponse{Lead: &marketingv1.Lead{Id: req.GetId(), Etag: leadEtag}}, nil
}

// calledTimes is how many calls of method reached the handlers.
func (f *fakeMarketing) calledTimes(method string) int {
	n := 0
	for _, c := range f.received() {
		if c.method == method {
			n++
		}
	}
	return n
}

// received returns the calls that reached the handlers so far, oldest first.
func (f *fakeMarketing) received() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// requestIDs returns the request ids of the captures of email.
func (f *fakeMarketing) requestIDs(email string) []string {
	var ids []string
	for _, c := range f.received() {
		if c.method == "CaptureLead" && c.email == email {
			ids = append(ids, c.requestID)
		}
	}
	return ids
}

// captured returns how many captures of email reached the handler.
func (f *fakeMarketing) captured(email string) int {
	n := 0
	for _, c := range f.received() {
		if c.method == "CaptureLead" && c.email == email {
			n++
		}
	}
	return n
}

// system is the real gateway in front of the real gRPC server and its interceptors (auth, rate
// limit, validation, idempotency), with a fake marketing service behind them.
type system struct {
	*gatewaytest.Edge
	marketing *fakeMarketing
}

// startSystem starts the gateway with cfg over a suite with opts.
func startSystem(t *testing.T, opts servicetest.Options, cfg gateway.Config) *system {
	t.Helper()
	fake := &fakeMarketing{}
	opts.Fakes = append(opts.Fakes, func(s grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(s, fake) })
	suite := servicetest.Start(t, opts)
	return &system{Edge: gatewaytest.Start(t, suite, cfg), marketing: fake}
}
