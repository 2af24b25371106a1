package server_test

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// The peers are fakes of the services the customer 360 reads: marketing's registry knows one
// person, and the sections are available and empty.
type (
	marketingPeer struct {
		marketingv1.UnimplementedMarketingServiceServer
	}
	productPeer struct {
		productv1.UnimplementedProductServiceServer
	}
	supportPeer struct {
		supportv1.UnimplementedSupportServiceServer
	}
)

var peers = []func(grpc.ServiceRegistrar){
	func(r grpc.ServiceRegistrar) { marketingv1.RegisterMarketingServiceServer(r, marketingPeer{}) },
	func(r grpc.ServiceRegistrar) { productv1.RegisterProductServiceServer(r, productPeer{}) },
	func(r grpc.ServiceRegistrar) { supportv1.RegisterSupportServiceServer(r, supportPeer{}) },
}

// resolvedCustomer is the one person the fake registry knows: every contact resolves to it.
const resolvedCustomer = "01a246b0-b849-7d32-81a5-a0e3fcb7f00c"

func (marketingPeer) ResolveCustomer(context.Context, *marketingv1.ResolveCustomerRequest) (*marketingv1.ResolveCustomerResponse, error) {
	return &marketingv1.ResolveCustomerResponse{Customer: &marketingv1.ResolvedCustomer{CustomerId: resolvedCustomer, Created: true}}, nil
}

func (marketingPeer) GetCustomerIdentity(_ context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	if req.GetCustomerId() != resolvedCustomer {
		return nil, status.Error(codes.NotFound, "customer not found")
	}
	return &marketingv1.GetCustomerIdentityResponse{Customer: &marketingv1.CustomerIdentity{Id: resolvedCustomer}}, nil
}

func (marketingPeer) GetCustomerLifecycle(context.Context, *marketingv1.GetCustomerLifecycleRequest) (*marketingv1.GetCustomerLifecycleResponse, error) {
	return nil, status.Error(codes.NotFound, "customer not found")
}

func (marketingPeer) GetLoyaltyAccount(context.Context, *marketingv1.GetLoyaltyAccountRequest) (*marketingv1.GetLoyaltyAccountResponse, error) {
	return nil, status.Error(codes.NotFound, "no loyalty account")
}

func (productPeer) ListSubscriptions(context.Context, *productv1.ListSubscriptionsRequest) (*productv1.ListSubscriptionsResponse, error) {
	return &productv1.ListSubscriptionsResponse{}, nil
}

func (productPeer) ListEntitlements(context.Context, *productv1.ListEntitlementsRequest) (*productv1.ListEntitlementsResponse, error) {
	return &productv1.ListEntitlementsResponse{}, nil
}

func (productPeer) GetCustomerAdoption(context.Context, *productv1.GetCustomerAdoptionRequest) (*productv1.GetCustomerAdoptionResponse, error) {
	return nil, status.Error(codes.NotFound, "no usage")
}

func (supportPeer) ListTickets(context.Context, *supportv1.ListTicketsRequest) (*supportv1.ListTicketsResponse, error) {
	return &supportv1.ListTicketsResponse{}, nil
}

func (supportPeer) ListNpsResponses(context.Context, *supportv1.ListNpsResponsesRequest) (*supportv1.ListNpsResponsesResponse, error) {
	return &supportv1.ListNpsResponsesResponse{}, nil
}
