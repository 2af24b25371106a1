package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/platform"
	"github.com/crmcycle/crm/pkg/redistest"
	"github.com/crmcycle/crm/pkg/servicetest"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales/server"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func salesService(d platform.Deps) (platform.Service, error) { return server.New(d) }

// TestNewServesSales: the service is named for its target, registers SalesService (which turns
// SERVING once Redis answers) and answers a call.
func TestNewServesSales(t *testing.T) {
	suite := servicetest.Start(t, servicetest.Options{Services: []servicetest.Builder{salesService}})
	if got := suite.Services[0].Name(); got != "sales" {
		t.Fatalf("Name() = %q, want sales", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	service := salesv1.SalesService_ServiceDesc.ServiceName
	watch, err := healthpb.NewHealthClient(suite.Conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("watching the health of %s: %v; want SERVING", service, err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	_, key := suite.NewKey(t, "", "sales.read")
	resp, err := salesv1.NewSalesServiceClient(suite.Conn).GetPipeline(servicetest.WithKey(context.Background(), key),
		&salesv1.GetPipelineRequest{Id: "default"})
	if err != nil || len(resp.GetPipeline().GetStages()) != 6 {
		t.Fatalf("GetPipeline(default) = %v, %v; want the six default stages", resp, err)
	}
}

// TestNewDialsEachPeerByName: the customer 360 reads marketing, product and support over the
// connections New dialed for each by name, so with one peer unreachable only its section is
// unavailable.
func TestNewDialsEachPeerByName(t *testing.T) {
	for _, peer := range []string{"marketing", "product", "support"} {
		t.Run(peer, func(t *testing.T) {
			suite := servicetest.Start(t, servicetest.Options{
				Services: []servicetest.Builder{salesService}, Fakes: peers, Unreachable: []string{peer}})
			_, key := suite.NewKey(t, "", "sales.read", "sales.write", "marketing.read", "product.read", "support.read")
			client, ctx := salesv1.NewSalesServiceClient(suite.Conn), servicetest.WithKey(context.Background(), key)
			contact, err := client.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{Email: "peer@example.com"}})
			if peer == "marketing" {
				// A contact's person is resolved in marketing's registry: without it, nothing is
				// created and the caller is told to retry.
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("create a contact with marketing unreachable: %v, want UNAVAILABLE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.GetCustomer(ctx, &salesv1.GetCustomerRequest{CustomerId: contact.GetContact().GetCustomerId()})
			if err != nil {
				t.Fatal(err)
			}
			c := resp.GetCustomer()
			got := map[string]salesv1.SectionStatus{
				"marketing": c.GetMarketing().GetStatus(), "product": c.GetProduct().GetStatus(), "support": c.GetSupport().GetStatus()}
			want := map[string]salesv1.SectionStatus{}
			for name := range got {
				want[name] = salesv1.SectionStatus_SECTION_STATUS_AVAILABLE
			}
			want[peer] = salesv1.SectionStatus_SECTION_STATUS_UNAVAILABLE
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("sections with %s unreachable (-want +got):\n%s", peer, diff)
			}
		})
	}
}
