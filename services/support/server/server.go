// Package server wires the support service. Until its issue lands it registers the contract's
// service with every method answering UNIMPLEMENTED, behind the same auth, validation and health.
package server

import (
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/platform"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Name is the service's target name.
const Name = "support"

// Service is the mountable support service.
type Service struct{}

var _ platform.Service = (*Service)(nil)

// New builds the service from the process's shared parts.
func New(platform.Deps) *Service { return &Service{} }

// Name implements platform.Service.
func (*Service) Name() string { return Name }

// Register implements platform.Service.
func (*Service) Register(r grpc.ServiceRegistrar) {
	supportv1.RegisterSupportServiceServer(r, supportv1.UnimplementedSupportServiceServer{})
}
