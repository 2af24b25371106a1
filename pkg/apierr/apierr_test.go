package apierr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/apierr"
)

var errLeadNotFound = apierr.New(apierr.NotFound, "LEAD_NOT_FOUND", "lead not found")

func TestIs(t *testing.T) {
	cause := errors.New("redis: connection refused")
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same sentinel", errLeadNotFound, errLeadNotFound, true},
		{"copy with metadata", errLeadNotFound.With("id", "l1"), errLeadNotFound, true},
		{"wrapped copy", errLeadNotFound.Wrap(cause), errLeadNotFound, true},
		{"wrapped by fmt", fmt.Errorf("get lead: %w", errLeadNotFound), errLeadNotFound, true},
		{"cause of a wrapped copy", errLeadNotFound.Wrap(cause), cause, true},
		{"other reason", apierr.New(apierr.NotFound, "CAMPAIGN_NOT_FOUND", "campaign not found"), errLeadNotFound, false},
		{"same reason, other kind", apierr.New(apierr.Internal, "LEAD_NOT_FOUND", "x"), errLeadNotFound, false},
		{"plain error", errors.New("lead not found"), errLeadNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v): got %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
}

func TestWithAndWrapCopy(t *testing.T) {
	base := apierr.New(apierr.AlreadyExists, "EMAIL_TAKEN", "e-mail taken").With("a", "1")
	withB := base.With("b", "2")
	if diff := cmp.Diff(map[string]string{"a": "1"}, base.Metadata); diff != "" {
		t.Errorf("With changed the original (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "2"}, withB.Metadata); diff != "" {
		t.Errorf("metadata of the copy (-want +got):\n%s", diff)
	}

	cause := errors.New("boom")
	wrapped := base.Wrap(cause)
	if base.Unwrap() != nil {
		t.Errorf("Wrap changed the original: Unwrap got %v, want nil", base.Unwrap())
	}
	if got, want := wrapped.Error(), "e-mail taken: boom"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if got, want := base.Error(), "e-mail taken"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if wrapped.Message != "e-mail taken" {
		t.Errorf("Message of a wrapped error: got %q, want the client-safe text only", wrapped.Message)
	}
}

func TestInvalid(t *testing.T) {
	e := apierr.Invalid("page_size", "must be at most 1000")
	want := &apierr.Error{
		Kind:    apierr.InvalidArgument,
		Reason:  "INVALID_ARGUMENT",
		Message: "invalid page_size: must be at most 1000",
		Fields:  []apierr.FieldViolation{{Field: "page_size", Description: "must be at most 1000"}},
	}
	if diff := cmp.Diff(want, e, cmp.AllowUnexported(apierr.Error{})); diff != "" {
		t.Errorf("Invalid (-want +got):\n%s", diff)
	}
}

func TestAs(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantOK     bool
		wantReason string
	}{
		{"direct", errLeadNotFound, true, "LEAD_NOT_FOUND"},
		{"wrapped", fmt.Errorf("use case: %w", errLeadNotFound.With("id", "1")), true, "LEAD_NOT_FOUND"},
		{"plain", errors.New("x"), false, ""},
		{"nil", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := apierr.As(tt.err)
			if ok != tt.wantOK {
				t.Fatalf("As: got ok %v, want %v", ok, tt.wantOK)
			}
			if ok && e.Reason != tt.wantReason {
				t.Errorf("reason: got %q, want %q", e.Reason, tt.wantReason)
			}
		})
	}
}
