package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func supportService(d platform.Deps) (platform.Service, error) { return server.New(d) }

const customer = "0192f3a0-0000-7000-8000-00000000c001"

// clock is the services' time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// registry stands in for marketing's identity registry: it has every customer.
type registry struct {
	marketingv1.UnimplementedMarketingServiceServer
}

func (registry) GetCustomerIdentity(_ context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	return &marketingv1.GetCustomerIdentityResponse{Customer: &marketingv1.CustomerIdentity{Id: req.GetCustomerId()}}, nil
}

// TestServiceWiring builds the service as a process does and checks what the process relies on:
// its name, its gRPC service registered and SERVING, a call answered through the interceptors,
// entitlement checks sent to the service named "product", and the background sweep that marks a
// run-out SLA clock as breached without anyone calling SweepTickets.
func TestServiceWiring(t *testing.T) {
	c := &clock{now: time.Now().UTC()}
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{supportService},
		Now: c.Now, Background: true, Unreachable: []string{"product"},
		Fakes: []func(grpc.ServiceRegistrar){func(r grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(r, registry{}) }}})
	svc := suite.Services[0]
	if svc.Name() != "support" {
		t.Errorf("Name() = %q, want support", svc.Name())
	}
	waitServing(t, suite, supportv1.SupportService_ServiceDesc.ServiceName)

	tenant, key := suite.NewKey(t, "", "support.read", "support.write", "marketing.read")
	client := supportv1.NewSupportServiceClient(suite.Conn)
	ctx := servicetest.WithKey(context.Background(), key)
	_, err := client.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{
		CustomerId: customer, ProductId: uuid.NewString(), Subject: "About a product"}})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ticket about a product with product unreachable: %v, want UNAVAILABLE", err)
	}
	created, err := client.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{
		CustomerId: customer, Subject: "Urgent", Priority: supportv1.TicketPriority_TICKET_PRIORITY_URGENT}})
	if err != nil {
		t.Fatal(err)
	}

	// The urgent first-response target is an hour; the sweep runs every few seconds.
	c.Set(c.Now().Add(2 * time.Hour))
	breaches := waitEvents(t, suite, tenant, "support.ticket.sla_breached")
	breach := &supportv1.TicketSlaBreached{}
	if len(breaches) != 1 {
		t.Fatalf("%d breach events, want 1", len(breaches))
	}
	if err := breaches[0].GetPayload().UnmarshalTo(breach); err != nil {
		t.Fatal(err)
	}
	if breach.GetTicket().GetTicketId() != created.GetTicket().GetId() || breach.GetTarget() != supportv1.SlaTarget_SLA_TARGET_FIRST_RESPONSE {
		t.Fatalf("breach = %v, want the first response of ticket %s", breach, created.GetTicket().GetId())
	}
}

// waitServing polls the health service until service is SERVING (it is once Redis answers).
func waitServing(t *testing.T, suite *servicetest.Suite, service string) {
	t.Helper()
	health := healthpb.NewHealthClient(suite.Conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %s: %v, %v after 10s, want SERVING", service, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvents polls the tenant's support events of one type until there is one.
func waitEvents(t *testing.T, suite *servicetest.Suite, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a few sweeps on a loaded machine
	for {
		if evs := suite.Events(t, "support", tenant, eventType); len(evs) > 0 {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event after 30s", eventType)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
