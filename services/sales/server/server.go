// Package server wires the sales service. Until its issue lands it registers the contract's
// service with every method answering UNIMPLEMENTED, behind the same auth, validation and health.
package server

import (
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/platform"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Name is the service's target name.
const Name = "sales"

// Service is the mountable sales service.
type Service struct{}

var _ platform.Service = (*Service)(nil)

// New builds the service from the process's shared parts.
func New(platform.Deps) *Service { return &Service{} }

// Name implements platform.Service.
func (*Service) Name() string { return Name }

// Register implements platform.Service.
func (*Service) Register(r grpc.ServiceRegistrar) {
	salesv1.RegisterSalesServiceServer(r, salesv1.UnimplementedSalesServiceServer{})
}
