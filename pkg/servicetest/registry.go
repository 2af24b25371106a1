package servicetest

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Registry stands in for marketing's identity registry in a service's own tests: it has every
// customer but the ones a test calls unknown or merged. Marketing's registry itself, and the
// services checking against it, are tested in marketing and across services in cmd/crm. Pass
// Register in Options.Fakes.
type Registry struct {
	marketingv1.UnimplementedMarketingServiceServer
	unknown sync.Map // customer id -> "" (unknown) or the survivor (merged)
}

// Register serves the registry on a gRPC server.
func (f *Registry) Register(r grpc.ServiceRegistrar) {
	marketingv1.RegisterMarketingServiceServer(r, f)
}

// Forget makes a customer unknown: never registered, or erased.
func (f *Registry) Forget(customer string) { f.unknown.Store(customer, "") }

// Merge makes a customer merged into survivor.
func (f *Registry) Merge(customer, survivor string) { f.unknown.Store(customer, survivor) }

// GetCustomerIdentity answers NOT_FOUND for a forgotten customer, mergedInto for a merged one.
func (f *Registry) GetCustomerIdentity(_ context.Context, req *marketingv1.GetCustomerIdentityRequest) (*marketingv1.GetCustomerIdentityResponse, error) {
	v, gone := f.unknown.Load(req.GetCustomerId())
	if gone && v == "" {
		return nil, status.Error(codes.NotFound, "customer not found")
	}
	survivor, _ := v.(string)
	return &marketingv1.GetCustomerIdentityResponse{Customer: &marketingv1.CustomerIdentity{Id: req.GetCustomerId(), MergedInto: survivor}}, nil
}
