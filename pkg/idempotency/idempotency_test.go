package idempotency_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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
	rdb := redistest.Client(t)
	keys, err := keyspace.Open(context.Background(), rdb, 16)
	if err != nil {
		t.Fatal(err)
	}
	store := idempotency.New(rdb, keys, idempotency.Config{Poll: time.Millisecond})
	tenant := redistest.Tenant(t)
	ctxWith := func(key string) context.Context {
		ctx := auth.WithPrincipal(context.Background(), auth.Principal{TenantID: tenant})
		return metadata.NewIncomingContext(ctx, metadata.Pairs(idempotency.MetadataKey, key))
	}
	return store.UnaryServerInterceptor(func(string) bool { return true }), ctxWith
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
