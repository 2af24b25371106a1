// Package support is stage 4 of the CRM cycle: service and retention. This package holds the domain
// rules (the ticket status machine, SLA clocks, satisfaction, statistics) and the use cases;
// redisstore persists them, productclient asks the product service about entitlements, and rpc
// exposes them over gRPC.
package support

import (
	"context"
	"errors"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/page"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// The stored and served forms are the contract's messages, so nothing is lost between the store
// (protobuf binary) and the wire.
type (
	Ticket          = supportv1.Ticket
	Comment         = supportv1.Comment
	SlaPolicy       = supportv1.SlaPolicy
	SupportSettings = supportv1.SupportSettings
	NpsResponse     = supportv1.NpsResponse
)

// Errors of the support use cases.
var (
	ErrTicketNotFound = apierr.New(apierr.NotFound, "TICKET_NOT_FOUND", "ticket not found")
	ErrTicketStatus   = apierr.New(apierr.FailedPrecondition, "TICKET_STATUS",
		"the ticket's status does not allow this")
	ErrTicketEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the ticket changed since it was read; read it again and retry")
	ErrContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the ticket kept changing concurrently; retry")
	ErrAlreadyRated = apierr.New(apierr.FailedPrecondition, "ALREADY_RATED", "the ticket has been rated already")
	ErrNotEntitled  = apierr.New(apierr.FailedPrecondition, "NOT_ENTITLED",
		"the customer is not entitled to support for this product")
	ErrProductUnavailable = apierr.New(apierr.Unavailable, "PRODUCT_UNAVAILABLE",
		"the product service cannot check the entitlement right now; retry")
	ErrConfigEtag = apierr.New(apierr.Aborted, "ETAG_MISMATCH",
		"the setting changed since it was read; read it again and retry")
	ErrConfigContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE",
		"the setting kept changing concurrently; retry")
)

// ErrStale means a resource changed between read and write.
var ErrStale = errors.New("support: changed since it was read")

// TicketWrite is one atomic change of a ticket: the ticket, its indexes, its SLA and auto-close
// schedule, the statistics counters and the outbox events, all or nothing.
type TicketWrite struct {
	// Ticket is the ticket after the change; nil when the change leaves it as it was (a comment
	// that stops no clock), which still requires Prev to be current.
	Ticket *Ticket
	// Prev is the ticket as read, nil on create: the write fails with ErrStale unless it is still
	// the current version.
	Prev *Ticket
	// Comment is a comment to add, if any.
	Comment *Comment
	// Tally are the counter deltas of the change.
	Tally Tally
	// Events are the outbox events of the change, appended in order.
	Events [][]byte
}

// TicketIndex names a secondary index: all tickets (zero value), or those with one status,
// priority, assignee, customer or product, or with a breached SLA clock.
type TicketIndex struct {
	Status   supportv1.TicketStatus
	Priority supportv1.TicketPriority
	Assignee string
	Customer string
	Product  string
	Breached bool
}

// Schedule names a due-time schedule the sweeps work through.
type Schedule string

// The schedules: running SLA clocks by their next due time, solved tickets by their auto-close time.
const (
	SlaSchedule       Schedule = "sla-due"
	AutoCloseSchedule Schedule = "autoclose-due"
)

// Due is a ticket whose scheduled time has come.
type Due struct {
	Tenant, TicketID string
}

// Store persists tickets, comments, configuration and NPS answers with their indexes, counters and
// outbox events, each write in one atomic call.
type Store interface {
	// SaveTicket commits w; ErrStale if w.Prev is not current (or, on create, the id exists).
	SaveTicket(ctx context.Context, tenant string, w TicketWrite) error
	// GetTicket returns a ticket or ErrTicketNotFound.
	GetTicket(ctx context.Context, tenant, id string) (*Ticket, error)
	// GetTickets reads tickets by id in one round trip; nil where there is none.
	GetTickets(ctx context.Context, tenant string, ids []string) ([]*Ticket, error)
	// ListTickets returns a page of an index, newest first, and the cursor of the next page.
	ListTickets(ctx context.Context, tenant string, ix TicketIndex, p page.Request) (page.Page[*Ticket], error)
	// ListComments returns a page of a ticket's comments, oldest first.
	ListComments(ctx context.Context, tenant, ticketID string, p page.Request) (page.Page[*Comment], error)
	// DueTickets returns up to limit tickets of a tenant whose time in schedule is at or before now.
	DueTickets(ctx context.Context, tenant string, s Schedule, now time.Time, limit int) ([]string, error)
	// DueInPartition is DueTickets across the tenants of one key-space partition.
	DueInPartition(ctx context.Context, partition int, s Schedule, now time.Time, limit int) ([]Due, error)

	// SlaPolicies returns the policies a tenant has changed, by priority.
	SlaPolicies(ctx context.Context, tenant string) (map[supportv1.TicketPriority]*SlaPolicy, error)
	// SaveSlaPolicy stores p if the stored one is still at version prev ("" for none); ErrStale otherwise.
	SaveSlaPolicy(ctx context.Context, tenant string, p *SlaPolicy, prev string, event []byte) error
	// Settings returns a tenant's stored settings, nil if it never changed them.
	Settings(ctx context.Context, tenant string) (*SupportSettings, error)
	// SaveSettings stores s if the stored settings are still at version prev; ErrStale otherwise.
	SaveSettings(ctx context.Context, tenant string, s *SupportSettings, prev string, event []byte) error

	// SaveNpsResponse stores an NPS answer with its indexes (the tenant's, the customer's),
	// counter deltas and event.
	SaveNpsResponse(ctx context.Context, tenant string, r *NpsResponse, tally Tally, event []byte) error
	// ListNpsResponses returns a page of the tenant's answers, or of one customer's when customer
	// is set, newest first, and the cursor of the next page.
	ListNpsResponses(ctx context.Context, tenant, customer string, p page.Request) (page.Page[*NpsResponse], error)
	// Tally returns a tenant's counters.
	Tally(ctx context.Context, tenant string) (Tally, error)
}

// Entitlements answers whether a customer may get support for a product.
// CustomerCheck tells whether a customer exists: every write about a customer asks it first.
type CustomerCheck interface {
	// Check returns nil when the tenant has the customer (marketing's registry), customerref's
	// refusals when it does not or they were merged, customerref.ErrUnavailable when marketing
	// cannot answer.
	Check(ctx context.Context, tenant, customer, field string) error
}

// Entitlements answers whether a customer may get support on a product.
type Entitlements interface {
	// Check returns the id of the grant (subscription or entitlement) that entitles customer to
	// product; ErrNotEntitled when none does, ErrProductUnavailable when it cannot tell.
	Check(ctx context.Context, customer, product string) (string, error)
}

// Clock is the time source of the use cases; tests control it.
type Clock func() time.Time
