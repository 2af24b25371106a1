package grpcserver

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// logCalls logs each finished unary call at the level of its status code (codeToLevel), with the
// fields of go-grpc-middleware's logging interceptor, which the stream calls keep. It asks the
// logger first and builds no fields for a call that will not be logged: successful calls are not,
// by default, and building their fields cost more than the rest of the interceptor chain.
func logCalls(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		level := slog.Level(codeToLevel(code))
		if !logger.Enabled(ctx, level) {
			return resp, err
		}
		service, method, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
		attrs := []slog.Attr{
			slog.String("protocol", "grpc"),
			slog.String("grpc.component", "server"),
			slog.String("grpc.service", service),
			slog.String("grpc.method", method),
			slog.String("grpc.method_type", "unary"),
			slog.String("grpc.start_time", start.Format(time.RFC3339)),
			slog.String("grpc.code", code.String()),
			slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if d, ok := ctx.Deadline(); ok {
			attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
		}
		if err != nil {
			attrs = append(attrs, slog.Any("grpc.error", err))
		}
		if ids := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(ids) == 1 {
			attrs = append(attrs, slog.String("request_id", ids[0])) // as the client saw it in X-Request-Id
		}
		logger.LogAttrs(ctx, level, "finished call", attrs...)
		return resp, err
	}
}
