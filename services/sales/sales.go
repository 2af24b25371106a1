// Package sales is stage 2 of the CRM cycle: acquisition and conversion. This package holds the
// domain rules and use cases (accounts and contacts, lead conversion, pipelines, opportunities,
// orders, activities, forecast); redisstore persists them, rpc exposes them over gRPC, and
// marketingclient and productclient reach the other services.
package sales

import (
	"context"
	"errors"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/search"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// The stored and served forms: the contract's messages, so nothing is lost between the store
// (protobuf binary) and the wire.
type (
	Account     = salesv1.Account
	Contact     = salesv1.Contact
	Pipeline    = salesv1.Pipeline
	Opportunity = salesv1.Opportunity
	Order       = salesv1.Order
	OrderLine   = salesv1.OrderLine
	Activity    = salesv1.Activity
)

// ErrStale means a resource changed between read and write.
var ErrStale = errors.New("sales: resource changed since it was read")

// defaultCurrency prices deals and orders that name no currency.
const defaultCurrency = "USD"

// writeAttempts bounds optimistic retries of writes racing other writes of the same resource.
const writeAttempts = 8

// Env is what every use case needs: the store, the event publisher, the validator and the clock.
type Env struct {
	Store     Store
	Publisher events.Publisher
	Validator protovalidate.Validator
	Now       func() time.Time
	// Registry is marketing's identity registry: one person is one customer.
	Registry CustomerRegistry
	// Known checks that the tenant has a customer (marketing's registry, customerref.Checker).
	Known CustomerCheck
}

// CustomerCheck tells whether the tenant has a customer: nil, or customerref's refusals (unknown,
// merged) and ErrUnavailable when marketing cannot answer.
type CustomerCheck interface {
	Check(ctx context.Context, tenant, customer, field string) error
}

// CustomerRegistry is marketing's identity registry as sales uses it.
type CustomerRegistry interface {
	// Resolve returns the customer id of the person with a normalized e-mail, registering a
	// person marketing does not know; ErrMarketingUnavailable when marketing cannot answer.
	Resolve(ctx context.Context, email string) (string, error)
	// Attach adds a normalized e-mail to a known customer (their record now carries it) and
	// returns the customer, the survivor when they were merged; ErrEmailOfAnotherCustomer (naming
	// them) when another customer has it, ErrContactCustomerGone when the customer is unknown,
	// ErrMarketingUnavailable when marketing cannot answer.
	Attach(ctx context.Context, customer, email string) (string, error)
	// Find returns the customer id of the person with an external id, "" when marketing knows
	// none; ErrMarketingUnavailable when marketing cannot answer.
	Find(ctx context.Context, externalID string) (string, error)
	// ResolveImported resolves up to 1,000 imported people at once, registering the unknown
	// ones (origin IMPORT: they enter the lifecycle as SUSPECTs); a refused person (a bad
	// e-mail, an external id of another customer) is that item's Err.
	ResolveImported(ctx context.Context, people []Person) ([]Resolved, error)
}

func (e Env) event(ctx context.Context, body eventv1.Body, tenant, customerID string) ([]byte, error) {
	_, data, err := e.Publisher.Envelope(ctx, body, tenant, customerID, e.Now())
	return data, err
}

// Store persists every sales resource with its indexes, counters and outbox events; each method
// that writes is one atomic commit.
type Store interface {
	AccountStore
	ContactStore
	PipelineStore
	OpportunityStore
	OrderStore
	ActivityStore
	ValueStore
	ValueMergeStore
	MergeStore
	EraseStore
	ImportStore
	// ReadMany fills msgs[i] with the resource of kind ("account", "contact", "opportunity",
	// "order", "activity") with ids[i], in one round trip; found[i] is false where there is none.
	ReadMany(ctx context.Context, tenant, kind string, ids []string, msgs []proto.Message) (found []bool, err error)
	// Convert writes a lead conversion in one commit; ErrLeadAlreadyConverted when the lead was
	// converted before.
	Convert(ctx context.Context, tenant string, c *Conversion, events [][]byte) error
}

// Index is a secondary index to page through. Name selects it (empty: all resources of the
// kind). Plain indexes hold ids (UUIDv7, so time-ordered); sorted ones ("name", "close_date",
// "amount", "time") hold "<sort key>\x00<id>". Min and Max are Redis lex bounds ("-" and "+"
// when empty); Desc lists from the top (newest first).
//
// A lookup or a search sets more: Email finds the one contact with that normalized e-mail;
// Search reads a search index (pkg/search), where a record counts through its first matching
// member; Also is the equality field of a pair (field and value, proto name), checked on each
// record the lookup or search finds.
type Index struct {
	Name     []string
	Min, Max string
	Desc     bool
	Email    string
	// ExternalID finds the contact of the person marketing's registry knows by that id.
	ExternalID string
	Search     search.Prefix
	Also       []string
}

// newestFirst is the plain index name lists newest first.
func newestFirst(name ...string) Index { return Index{Name: name, Desc: true} }

// Query is one page of a list over an index.
type Query struct {
	Index Index
	page.Request
}

// Enum values the store needs to place resources in their indexes.
const (
	StatusOpen = salesv1.OpportunityStatus_OPPORTUNITY_STATUS_OPEN
	TypeTask   = salesv1.ActivityType_ACTIVITY_TYPE_TASK
)
