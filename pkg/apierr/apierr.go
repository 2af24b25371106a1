// Package apierr is the one error vocabulary of CRM Cycle. Domain code returns these errors (usually
// as package-level sentinels); only the transport edge (grpcserver) turns them into gRPC statuses
// with google.rpc.ErrorInfo and BadRequest details. Any other error reaches clients as
// "internal error".
package apierr

import (
	"errors"
	"fmt"
)

// Kind classifies an error the way clients need to react to it.
type Kind int

// The kinds, each mapped to exactly one gRPC code at the edge.
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	AlreadyExists
	FailedPrecondition
	Aborted
	Unauthenticated
	PermissionDenied
	ResourceExhausted
	Unavailable
	Unimplemented
)

// ReasonEtagMismatch is the reason of every stale-etag error (Kind Aborted, AIP-154): a service's
// sentinels and the gateway's If-Match check answer it alike, so a client has one case to handle.
const ReasonEtagMismatch = "ETAG_MISMATCH"

// FieldViolation names one bad field of a request.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a classified application error. Reason is a stable UPPER_SNAKE identifier clients may
// switch on (it becomes google.rpc.ErrorInfo.reason); Message is safe to show to the caller.
type Error struct {
	Kind       Kind
	Reason     string
	Message    string
	Fields     []FieldViolation
	Metadata   map[string]string
	underlying error
}

// New returns an error of the given kind and reason.
func New(kind Kind, reason, message string) *Error {
	return &Error{Kind: kind, Reason: reason, Message: message}
}

// Invalid returns an INVALID_ARGUMENT error about one field.
func Invalid(field, description string) *Error {
	return &Error{
		Kind:    InvalidArgument,
		Reason:  "INVALID_ARGUMENT",
		Message: fmt.Sprintf("invalid %s: %s", field, description),
		Fields:  []FieldViolation{{Field: field, Description: description}},
	}
}

func (e *Error) Error() string {
	if e.underlying != nil {
		return e.Message + ": " + e.underlying.Error()
	}
	return e.Message
}

// Unwrap exposes the cause given to Wrap, for logs; it never reaches clients.
func (e *Error) Unwrap() error { return e.underlying }

// Is matches errors of the same reason, so errors.Is(err, ErrLeadNotFound) holds for copies made by
// With and Wrap.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Reason == e.Reason && t.Kind == e.Kind
}

// With returns a copy of e carrying metadata (for example the id of a conflicting resource).
func (e *Error) With(key, value string) *Error {
	c := *e
	c.Metadata = make(map[string]string, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		c.Metadata[k] = v
	}
	c.Metadata[key] = value
	return &c
}

// Wrap returns a copy of e that records cause for logs.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.underlying = cause
	return &c
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
