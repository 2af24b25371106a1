package adminhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crmcycle/crm/pkg/adminhttp"
)

func TestHandler(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })
	ready := func(context.Context) error { return nil }
	notReady := func(context.Context) error { return errors.New("redis: connection refused") }
	tests := []struct {
		name     string
		ready    func(context.Context) error
		method   string
		path     string
		wantCode int
		wantBody string // substring
	}{
		{"metrics", ready, http.MethodGet, "/metrics", http.StatusOK, "# metrics"},
		{"healthz", notReady, http.MethodGet, "/healthz", http.StatusOK, "ok"},
		{"readyz ready", ready, http.MethodGet, "/readyz", http.StatusOK, "ok"},
		{"readyz not ready", notReady, http.MethodGet, "/readyz", http.StatusServiceUnavailable, "connection refused"},
		{"unknown path", ready, http.MethodGet, "/debug", http.StatusNotFound, ""},
		{"wrong method", ready, http.MethodPost, "/readyz", http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			adminhttp.Handler(metrics, tt.ready).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantCode)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestReadyzHasADeadline(t *testing.T) {
	var hasDeadline bool
	h := adminhttp.Handler(http.NotFoundHandler(), func(ctx context.Context) error {
		_, hasDeadline = ctx.Deadline()
		return nil
	})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if !hasDeadline {
		t.Errorf("readiness check context: got no deadline, want one")
	}
}

func TestProfilingIsOffUnlessAskedFor(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })
	plain := adminhttp.Handler(metrics, func(context.Context) error { return nil })
	for _, tt := range []struct {
		name     string
		h        http.Handler
		path     string
		wantCode int
		wantBody string
	}{
		{"off", plain, "/debug/pprof/", http.StatusNotFound, ""},
		{"on: index", adminhttp.WithProfiling(plain), "/debug/pprof/", http.StatusOK, "goroutine"},
		{"on: heap", adminhttp.WithProfiling(plain), "/debug/pprof/heap?debug=1", http.StatusOK, "heap profile"},
		{"on: the admin routes stay", adminhttp.WithProfiling(plain), "/metrics", http.StatusOK, "# metrics"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("GET %s: got %d %.80q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}
