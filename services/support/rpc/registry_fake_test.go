package rpc_test

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// registryFake stands in for marketing's identity registry: it has every customer but the ones a
// test calls unknown or merged. Marketing's registry itself, and support checking against it, are
// tested in marketing and across services in cmd/crm.
type registryFake struct {
	marketingv1.UnimplementedMarketingServiceServer
	unknown sync.Map // customer id -> "" (unknown) or the survivor (merged)
}

func (f *registryFake) register(r grpc.ServiceRegistrar) {
	marketingv1.RegisterMarketingServiceServer(r, f)
}

func (f *registryFake) GetCustomerIdentity(_ context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	v, gone := f.unknown.Load(req.GetCustomerId())
	if gone && v == "" {
		return nil, status.Error(codes.NotFound, "customer not found")
	}
	survivor, _ := v.(string)
	return &marketingv1.GetCustomerIdentityResponse{Customer: &marketingv1.CustomerIdentity{Id: req.GetCustomerId(), MergedInto: survivor}}, nil
}
