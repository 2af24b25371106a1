package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/crmcycle/crm/pkg/apierr"
)

var kindCodes = map[apierr.Kind]codes.Code{
	apierr.Internal:           codes.Internal,
	apierr.InvalidArgument:    codes.InvalidArgument,
	apierr.NotFound:           codes.NotFound,
	apierr.AlreadyExists:      codes.AlreadyExists,
	apierr.FailedPrecondition: codes.FailedPrecondition,
	apierr.Aborted:            codes.Aborted,
	apierr.Unauthenticated:    codes.Unauthenticated,
	apierr.PermissionDenied:   codes.PermissionDenied,
	apierr.ResourceExhausted:  codes.ResourceExhausted,
	apierr.Unavailable:        codes.Unavailable,
	apierr.Unimplemented:      codes.Unimplemented,
}

// errorInterceptor is the one place where errors become gRPC statuses (STYLE.md habit 5).
func errorInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, toStatus(ctx, logger, info.FullMethod, err)
		}
		return resp, nil
	}
}

func toStatus(ctx context.Context, logger *slog.Logger, fullMethod string, err error) error {
	domain := errorDomain(fullMethod)
	if e, ok := apierr.As(err); ok {
		if e.Kind == apierr.Internal {
			logger.ErrorContext(ctx, "internal error", "method", fullMethod, "error", err)
		}
		return withDetails(kindCodes[e.Kind], e.Message, domain, e.Reason, e.Metadata, e.Fields)
	}
	if st, ok := status.FromError(err); ok {
		if fields := validationViolations(st); fields != nil {
			return withDetails(codes.InvalidArgument, "invalid request: "+describe(fields), domain,
				"INVALID_ARGUMENT", nil, fields)
		}
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	logger.ErrorContext(ctx, "internal error", "method", fullMethod, "error", err)
	return withDetails(codes.Internal, "internal error", domain, "INTERNAL", nil, nil)
}

func withDetails(code codes.Code, msg, domain, reason string, metadata map[string]string, fields []apierr.FieldViolation) error {
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: metadata}}
	if len(fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: f.Field, Description: f.Description})
		}
		details = append(details, br)
	}
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// validationViolations turns the protovalidate interceptor's detail into field violations.
func validationViolations(st *status.Status) []apierr.FieldViolation {
	for _, d := range st.Details() {
		v, ok := d.(*validate.Violations)
		if !ok {
			continue
		}
		fields := make([]apierr.FieldViolation, 0, len(v.GetViolations()))
		for _, viol := range v.GetViolations() {
			fields = append(fields, apierr.FieldViolation{
				Field: protovalidate.FieldPathString(viol.GetField()), Description: viol.GetMessage()})
		}
		return fields
	}
	return nil
}

func describe(fields []apierr.FieldViolation) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + ": " + f.Description
	}
	return strings.Join(parts, "; ")
}

// errorDomain names the service in ErrorInfo, e.g. "marketing.crm" for crm.marketing.v1.
func errorDomain(fullMethod string) string {
	parts := strings.Split(strings.TrimPrefix(fullMethod, "/"), ".")
	if len(parts) > 2 && parts[0] == "crm" {
		return parts[1] + ".crm"
	}
	return "crm"
}
