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
	"github.com/crmcycle/crm/pkg/ratelimit"
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

// streamErrors maps a streaming handler's error as errorInterceptor does a unary one's.
func streamErrors(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := handler(srv, ss); err != nil {
			return toStatus(ss.Context(), logger, info.FullMethod, err)
		}
		return nil
	}
}

func toStatus(ctx context.Context, logger *slog.Logger, fullMethod string, err error) error {
	domain := errorDomain(fullMethod)
	if answered(err) {
		return err
	}
	if limited, ok := limitedInside(err); ok {
		// Another service refused a call made on the client's behalf: the client is over its
		// limit, and should hear so (429), not that the service is down.
		seconds := limited.GetMetadata()["retry_after_seconds"]
		if seconds == "" {
			seconds = retryAfterSeconds
		}
		setRetryAfter(ctx, seconds)
		return withDetails(codes.ResourceExhausted, ratelimit.ErrLimited.Message, domain, ratelimit.ErrLimited.Reason,
			map[string]string{"retry_after_seconds": seconds}, nil)
	}
	if e, ok := apierr.As(err); ok {
		if e.Kind == apierr.Internal && storeUnavailable(ctx, err) {
			e = errStoreUnavailable
		}
		switch e.Kind {
		case apierr.Internal:
			logger.ErrorContext(ctx, "internal error", "method", fullMethod, "error", err)
		case apierr.Unavailable:
			logger.WarnContext(ctx, "unavailable", "method", fullMethod, "error", err)
			setRetryAfter(ctx, retryAfterSeconds)
		}
		return withDetails(kindCodes[e.Kind], e.Message, domain, e.Reason, e.Metadata, e.Fields)
	}
	if st, ok := status.FromError(err); ok && !storeUnavailable(ctx, err) {
		return fromStatus(ctx, logger, fullMethod, domain, st, err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	case storeUnavailable(ctx, err):
		logger.WarnContext(ctx, "store unavailable", "method", fullMethod, "error", err)
		setRetryAfter(ctx, retryAfterSeconds)
		return withDetails(codes.Unavailable, errStoreUnavailable.Message, domain, errStoreUnavailable.Reason, nil, nil)
	}
	logger.ErrorContext(ctx, "internal error", "method", fullMethod, "error", err)
	return withDetails(codes.Internal, "internal error", domain, "INTERNAL", nil, nil)
}

// fromStatus passes on a status that is already an answer (this server's, or a validation
// failure made into one), and makes one from a status without an ErrorInfo: a transport failure
// of a call to another service, whose text (addresses, TLS errors) is not for clients.
func fromStatus(ctx context.Context, logger *slog.Logger, fullMethod, domain string, st *status.Status, err error) error {
	if fields := validationViolations(st); fields != nil {
		return withDetails(codes.InvalidArgument, "invalid request: "+describe(fields), domain,
			"INVALID_ARGUMENT", nil, fields)
	}
	if errorInfo(st) != nil {
		return st.Err()
	}
	switch st.Code() {
	case codes.Unavailable:
		logger.WarnContext(ctx, "a needed service is unavailable", "method", fullMethod, "error", err)
		setRetryAfter(ctx, retryAfterSeconds)
		return withDetails(codes.Unavailable, "a service this call needs is unavailable right now; retry", domain,
			"SERVICE_UNAVAILABLE", nil, nil)
	case codes.Internal, codes.Unknown, codes.DataLoss:
		logger.ErrorContext(ctx, "internal error", "method", fullMethod, "error", err)
		return withDetails(codes.Internal, "internal error", domain, "INTERNAL", nil, nil)
	}
	return st.Err()
}

// answered reports whether err is already this edge's answer: a status with its ErrorInfo (a
// second mapping runs inside the idempotency interceptor).
func answered(err error) bool {
	s, ok := err.(interface{ GRPCStatus() *status.Status })
	return ok && errorInfo(s.GRPCStatus()) != nil
}

// limitedInside finds, in err's chain, another service's rate-limit refusal.
func limitedInside(err error) (*errdetails.ErrorInfo, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return nil, false
	}
	info := errorInfo(st)
	if info == nil || info.GetReason() != ratelimit.ErrLimited.Reason {
		return nil, false
	}
	return info, true
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
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
