package grpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Calls are logged by the level of their outcome, with the method and code; a call below the
// logger's level is not logged (and builds no fields).
func TestLogCalls(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/crm.marketing.v1.MarketingService/CaptureLead"}
	tests := []struct {
		name     string
		level    slog.Level
		err      error
		wantLine bool
		wantLvl  string
		wantCode string
	}{
		{"ok at info: not logged", slog.LevelInfo, nil, false, "", ""},
		{"ok at debug", slog.LevelDebug, nil, true, "DEBUG", "OK"},
		{"client error at info", slog.LevelInfo, status.Error(codes.InvalidArgument, "bad"), true, "INFO", "InvalidArgument"},
		{"bug at info", slog.LevelInfo, status.Error(codes.Internal, "boom"), true, "ERROR", "Internal"},
		{"unavailable at error: not logged", slog.LevelError, status.Error(codes.Unavailable, "down"), false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			resp, err := logCalls(logger)(context.Background(), "req", info, func(context.Context, any) (any, error) {
				return "resp", tt.err
			})
			if resp != "resp" || err != tt.err {
				t.Fatalf("got %v, %v; want the handler's resp, %v", resp, err, tt.err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !tt.wantLine {
				if out.Len() != 0 {
					t.Fatalf("logged %q, want nothing", out.String())
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %q", len(lines), out.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]any{"level": tt.wantLvl, "msg": "finished call", "grpc.code": tt.wantCode,
				"grpc.service": "crm.marketing.v1.MarketingService", "grpc.method": "CaptureLead"} {
				if got[k] != want {
					t.Errorf("%s: got %v, want %v (line %s)", k, got[k], want, lines[0])
				}
			}
			if _, ok := got["grpc.time_ms"].(float64); !ok {
				t.Errorf("grpc.time_ms: got %v, want a number", got["grpc.time_ms"])
			}
			if (tt.err != nil) != (got["grpc.error"] != nil) {
				t.Errorf("grpc.error: got %v, want it when the call failed (%v)", got["grpc.error"], tt.err)
			}
		})
	}
}
