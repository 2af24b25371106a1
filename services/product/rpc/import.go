package rpc

import (
	"context"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"

	"github.com/crmcycle/crm/pkg/importer"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// ImportProducts implements productv1.ProductServiceServer: a product import as a long-running
// operation (see pkg/importer and product.Catalog.ProductImport).
func (s *Server) ImportProducts(stream grpc.ClientStreamingServer[typev1.ImportChunk, longrunningpb.Operation]) error {
	return importer.Serve(s.imports, s.catalog.ProductImport(s.importStore), stream)
}

// GetOperation implements productv1.ProductServiceServer.
func (s *Server) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return s.imports.GetOperation(ctx, req)
}

// CancelOperation implements productv1.ProductServiceServer.
func (s *Server) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*longrunningpb.Operation, error) {
	return s.imports.CancelOperation(ctx, req)
}

// ListOperations implements productv1.ProductServiceServer.
func (s *Server) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	return s.imports.ListOperations(ctx, req)
}
