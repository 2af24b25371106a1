package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/crmcycle/crm/pkg/logging"
)

func TestTraceIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	spanCtx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()

	tests := []struct {
		name      string
		ctx       context.Context
		logger    func(*slog.Logger) *slog.Logger
		level     slog.Level
		wantTrace bool
		wantLine  bool
	}{
		{name: "with a span", ctx: spanCtx, logger: same, level: slog.LevelInfo, wantTrace: true, wantLine: true},
		{name: "without a span", ctx: context.Background(), logger: same, level: slog.LevelInfo, wantLine: true},
		{name: "derived logger keeps ids", ctx: spanCtx, logger: func(l *slog.Logger) *slog.Logger { return l.With("svc", "x").WithGroup("g") }, level: slog.LevelInfo, wantTrace: true, wantLine: true},
		{name: "below the level", ctx: spanCtx, logger: same, level: slog.LevelDebug, wantLine: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.logger(logging.New(&buf, slog.LevelInfo)).Log(tt.ctx, tt.level, "hello", "k", "v")
			if !tt.wantLine {
				if buf.Len() != 0 {
					t.Errorf("output: got %q, want none", buf.String())
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("output %q is not one JSON record: %v", buf.String(), err)
			}
			if rec["msg"] != "hello" {
				t.Errorf("msg: got %v, want hello", rec["msg"])
			}
			traceID, _ := rec["trace_id"].(string)
			spanID, _ := rec["span_id"].(string)
			if !tt.wantTrace {
				if traceID != "" || spanID != "" {
					t.Errorf("ids without a span: got %q %q, want none", traceID, spanID)
				}
				return
			}
			if traceID == "" {
				// A derived logger may nest the ids in its group; they must be there somewhere.
				if g, ok := rec["g"].(map[string]any); ok {
					traceID, _ = g["trace_id"].(string)
					spanID, _ = g["span_id"].(string)
				}
			}
			if want := span.SpanContext().TraceID().String(); traceID != want {
				t.Errorf("trace_id: got %q, want %q", traceID, want)
			}
			if want := span.SpanContext().SpanID().String(); spanID != want {
				t.Errorf("span_id: got %q, want %q", spanID, want)
			}
		})
	}
}

func same(l *slog.Logger) *slog.Logger { return l }
