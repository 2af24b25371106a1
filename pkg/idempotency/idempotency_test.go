package idempotency_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/idempotency"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const method = "/crm.marketing.v1.MarketingService/CaptureLead"

func setup(t *testing.T) (grpc.UnaryServerInterceptor, func(key string) context.Context) {
	t.Helper()
	intercept, ctxWith, _ := setupMeasured(t)
	return intercept, ctxWith
}

// setupMeasured is setup with the store's metrics read by the SDK's manual reader.
func setupMeasured(t *testing.T) (grpc.UnaryServerInterceptor, func(key string) context.Context, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	store := idempotency.New(rdb, keys, idempotency.Config{Poll: time.Millisecond}, mp)
	tenant := redistest.Tenant(t)
	ctxWith := func(key string) context.Context {
		ctx := auth.WithPrincipal(context.Background(), auth.Principal{TenantID: tenant})
		return metadata.NewIncomingContext(ctx, metadata.Pairs(idempotency.MetadataKey, key))
	}
	return store.UnaryServerInterceptor(func(string) bool { return true }), ctxWith, reader
}

var info = &grpc.UnaryServerInfo{FullMethod: method}

func request() *marketingv1.CaptureLeadRequest {
	return &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "a@example.com"}}
}

func TestRetryableErrorsReleaseTheKey(t *testing.T) {
	intercept, ctxWith := setup(t)
	var calls atomic.Int64
	handler := func(context.Context, any) (any, error) {
		if calls.Add(1) == 1 {
			return nil, status.Error(codes.Unavailable, "redis is down")
		}
		return &marketingv1.CaptureLeadResponse{Lead: &marketingv1.Lead{Id: "x"}}, nil
	}
	if _, err := intercept(ctxWith("k"), request(), info, handler); status.Code(err) != codes.Unavailable {
		t.Fatalf("first call: %v", err)
	}
	resp, err := intercept(ctxWith("k"), request(), info, handler)
	if err != nil || resp.(*marketingv1.CaptureLeadResponse).GetLead().GetId() != "x" || calls.Load() != 2 {
		t.Fatalf("retry after a server error: %v %v (handler calls %d), want it to run again", resp, err, calls.Load())
	}
	if _, err := intercept(ctxWith("k"), request(), info, handler); err != nil || calls.Load() != 2 {
		t.Fatalf("third call ran the handler (%d calls) or failed (%v), want a replay", calls.Load(), err)
	}
}

func TestClientErrorsAreReplayed(t *testing.T) {
	intercept, ctxWith := setup(t)
	var calls atomic.Int64
	handler := func(context.Context, any) (any, error) {
		calls.Add(1)
		return nil, status.Error(codes.FailedPrecondition, "lead is disqualified")
	}
	for range 3 {
		if _, err := intercept(ctxWith("k"), request(), info, handler); status.Code(err) != codes.FailedPrecondition ||
			status.Convert(err).Message() != "lead is disqualified" {
			t.Fatalf("got %v, want the stored FailedPrecondition", err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want once", calls.Load())
	}
}

func TestDuplicateWaitsThenGivesUp(t *testing.T) {
	intercept, ctxWith := setup(t)
	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := intercept(ctxWith("slow"), request(), info, func(context.Context, any) (any, error) {
			close(running)
			<-release
			return &marketingv1.CaptureLeadResponse{}, nil
		})
		done <- err
	}()
	<-running
	ctx, cancel := context.WithTimeout(ctxWith("slow"), 50*time.Millisecond)
	defer cancel()
	_, err := intercept(ctx, request(), info, func(context.Context, any) (any, error) {
		t.Error("the duplicate ran the handler")
		return nil, nil
	})
	if !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("duplicate while the first runs: %v, want ErrInProgress", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// headerStream is the server side of a call as far as grpc.SetHeader sees it: it keeps the header.
type headerStream struct {
	grpc.ServerTransportStream
	header metadata.MD
}

func (s *headerStream) Method() string { return method }

func (s *headerStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

// counts reads the idempotency counters: replays by rpc.method, refusals by rpc.method and reason.
func counts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				name := m.Name
				for _, kv := range dp.Attributes.ToSlice() {
					name += " " + string(kv.Key) + "=" + kv.Value.Emit()
				}
				got[name] += dp.Value
			}
		}
	}
	return got
}

// TestReplaysAreCountedAndMarked: a first call is neither counted nor marked; each replay (of a
// response or of a stored error) counts one crm.idempotency.replays for its method and answers
// with the idempotent-replayed header; a key reused for another request counts one refusal.
func TestReplaysAreCountedAndMarked(t *testing.T) {
	intercept, ctxWith, reader := setupMeasured(t)
	call := func(key string, req *marketingv1.CaptureLeadRequest, err error) (metadata.MD, error) {
		stream := &headerStream{}
		ctx := grpc.NewContextWithServerTransportStream(ctxWith(key), stream)
		_, got := intercept(ctx, req, info, func(context.Context, any) (any, error) {
			if err != nil {
				return nil, err
			}
			return &marketingv1.CaptureLeadResponse{Lead: &marketingv1.Lead{Id: "x"}}, nil
		})
		return stream.header, got
	}
	const replays = "crm.idempotency.replays rpc.method=crm.marketing.v1.MarketingService/CaptureLead"
	const reused = "crm.idempotency.refusals reason=IDEMPOTENCY_KEY_REUSED rpc.method=crm.marketing.v1.MarketingService/CaptureLead"

	header, err := call("k", request(), nil)
	if err != nil || header.Get(idempotency.ReplayedHeader) != nil {
		t.Fatalf("first call: %v, header %v: want no %s", err, header, idempotency.ReplayedHeader)
	}
	if got := counts(t, reader); got[replays] != 0 || got[reused] != 0 {
		t.Fatalf("after a first call: %v, want nothing counted", got)
	}
	for i := range 2 {
		header, err := call("k", request(), nil)
		if err != nil || !slices.Equal(header.Get(idempotency.ReplayedHeader), []string{"true"}) {
			t.Fatalf("replay %d: %v, header %v: want %s: true", i, err, header, idempotency.ReplayedHeader)
		}
	}
	failed := status.Error(codes.FailedPrecondition, "lead is disqualified")
	if _, err := call("bad", request(), failed); status.Code(err) != codes.FailedPrecondition {
		t.Fatal(err)
	}
	if header, err := call("bad", request(), nil); status.Code(err) != codes.FailedPrecondition ||
		!slices.Equal(header.Get(idempotency.ReplayedHeader), []string{"true"}) {
		t.Fatalf("replayed error: %v, header %v: want the stored error, marked replayed", err, header)
	}
	other := &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "b@example.com"}}
	if header, err := call("k", other, nil); !errors.Is(err, idempotency.ErrKeyReused) || header.Get(idempotency.ReplayedHeader) != nil {
		t.Fatalf("key reused: %v, header %v: want ErrKeyReused, not marked replayed", err, header)
	}
	want := map[string]int64{replays: 3, reused: 1}
	if diff := cmp.Diff(want, counts(t, reader)); diff != "" {
		t.Fatalf("counters (-want +got):\n%s", diff)
	}
}
