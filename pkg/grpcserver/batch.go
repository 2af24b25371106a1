package grpcserver

import (
	"context"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/apierr"
)

// clientKinds are the errors one item of a batch reports on its own (AIP-233 per-item results).
var clientKinds = map[apierr.Kind]bool{
	apierr.InvalidArgument: true, apierr.NotFound: true, apierr.AlreadyExists: true,
	apierr.FailedPrecondition: true, apierr.Aborted: true,
}

// ItemStatus is the status an item of a batch reports: the code, message, ErrorInfo and field
// violations a call of its own would answer. ok is false for anything but a refusal of the item
// (a fault of the store or of another service, a bug): that fails the whole call instead, through
// the one mapping, so a fault is never reported as an item's refusal.
func ItemStatus(ctx context.Context, err error) (*spb.Status, bool) {
	method, _ := grpc.Method(ctx)
	if e, ok := apierr.As(err); ok && clientKinds[e.Kind] {
		st, _ := status.FromError(withDetails(kindCodes[e.Kind], e.Message, errorDomain(method), e.Reason, e.Metadata, e.Fields))
		return st.Proto(), true
	}
	// Another service's refusal, already mapped by its own edge.
	if st, ok := status.FromError(err); ok && errorInfo(st) != nil {
		switch st.Code() {
		case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted:
			return st.Proto(), true
		}
	}
	return nil, false
}

// ItemStatuses maps the errors of a batch's items, in order: nil for an item that succeeded, its
// status for a refused one. The first error that is no refusal is returned, to fail the call.
func ItemStatuses(ctx context.Context, errs []error) ([]*spb.Status, error) {
	out := make([]*spb.Status, len(errs))
	for i, err := range errs {
		if err == nil {
			continue
		}
		st, ok := ItemStatus(ctx, err)
		if !ok {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}
