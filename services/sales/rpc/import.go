package rpc

import (
	"context"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/importer"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// ImportContacts implements salesv1.SalesServiceServer: a contact import as a long-running
// operation (see pkg/importer and sales.Accounts.ImportContacts).
func (s *Server) ImportContacts(stream grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]) error {
	return importer.Serve(s.uc.Imports, s.uc.Accounts.ContactImport(), stream)
}

// ImportAccounts implements salesv1.SalesServiceServer: an account import as a long-running
// operation (see pkg/importer and sales.Accounts.ImportAccounts).
func (s *Server) ImportAccounts(stream grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]) error {
	return importer.Serve(s.uc.Imports, s.uc.Accounts.AccountImport(), stream)
}

// GetOperation implements salesv1.SalesServiceServer.
func (s *Server) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return s.uc.Imports.GetOperation(ctx, req)
}

// CancelOperation implements salesv1.SalesServiceServer.
func (s *Server) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*longrunningpb.Operation, error) {
	return s.uc.Imports.CancelOperation(ctx, req)
}

// ListOperations implements salesv1.SalesServiceServer.
func (s *Server) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.uc.Imports.ListOperations(ctx, req)
}
