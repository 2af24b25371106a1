// Package customerref is referential integrity for writes about a customer: every write that names
// a customer answers NOT_FOUND (with the field) when the tenant has no such customer, and
// FAILED_PRECONDITION naming the survivor when the customer was merged, and writes nothing.
// Marketing owns the identity registry and checks inside its own writes' commits; the other
// services ask it over gRPC through a Checker, which remembers positive answers for a short while.
package customerref

import "github.com/crmcycle/crm/pkg/apierr"

// Reasons of the refusals, as clients see them in ErrorInfo.
const (
	ReasonNotFound = "CUSTOMER_NOT_FOUND"
	ReasonMerged   = "CUSTOMER_MERGED"
)

// ErrNotFound matches (errors.Is) every refusal of an unknown customer.
var ErrNotFound = apierr.New(apierr.NotFound, ReasonNotFound, "no customer with this id in the tenant")

// ErrMerged matches every refusal of a merged customer.
var ErrMerged = apierr.New(apierr.FailedPrecondition, ReasonMerged,
	"the customer was merged into another: write about the survivor (merged_into)")

// NotFound is the answer to a write naming, in field, a customer the tenant does not have.
func NotFound(field string) error {
	e := *ErrNotFound
	e.Fields = []apierr.FieldViolation{{Field: field, Description: "no customer with this id in the tenant"}}
	return &e
}

// Merged is the answer to a write naming, in field, a customer merged into survivor. The survivor
// is named (metadata merged_into) so the caller can write about them instead: a merge is a
// decision someone took, and silently moving the write to the survivor would hide from the caller
// that the id it holds is stale.
func Merged(field, survivor string) error {
	e := ErrMerged.With("merged_into", survivor)
	e.Fields = []apierr.FieldViolation{{Field: field, Description: "the customer was merged into " + survivor}}
	return e
}
