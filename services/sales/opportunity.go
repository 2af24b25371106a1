package sales

import (
	"context"
	"fmt"
	"time"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/page"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// Errors of the opportunity use cases.
var (
	ErrOpportunityNotFound = apierr.New(apierr.NotFound, "OPPORTUNITY_NOT_FOUND", "opportunity not found")
	ErrOpportunityEtag     = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the opportunity changed since it was read; read it again and retry")
	ErrOpportunityClosed   = apierr.New(apierr.FailedPrecondition, "OPPORTUNITY_CLOSED", "the opportunity is already won or lost")
	ErrClosedStage         = apierr.New(apierr.FailedPrecondition, "CLOSED_STAGE",
		"closed stages are reached only through :win and :lose")
	ErrLinesFull = apierr.New(apierr.FailedPrecondition, "LINE_ITEMS_FULL",
		fmt.Sprintf("an opportunity holds at most %d line items (an order's limit)", maxLineItems))
	ErrNoLineItems    = apierr.New(apierr.FailedPrecondition, "NO_LINE_ITEMS", "winning needs at least one line item")
	ErrNoCustomer     = apierr.New(apierr.FailedPrecondition, "NO_CONTACT", "winning needs a contact: the order is placed for its customer")
	ErrContention     = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the records this call changes kept changing concurrently; retry")
	ErrUnknownStage   = apierr.Invalid("stage", "not a stage of the opportunity's pipeline")
	ErrNoParty        = apierr.Invalid("opportunity", "set account_id or contact_id")
	ErrAmountFixed    = apierr.Invalid("opportunity.amount", "the amount of an opportunity with line items is their sum")
	ErrAmount         = apierr.Invalid("opportunity.amount", "must be zero or more, in the opportunity's currency")
	ErrAmountTooLarge = apierr.Invalid("opportunity.amount", "must be below 9,223,372,036 units, the range of the forecast")
	// ErrOrderTotalTooLarge: an order's total beyond the int64 nano units revenue is counted in.
	ErrOrderTotalTooLarge = apierr.Invalid("order.lines", "the order's total must be below 9,223,372,036 units, the range revenue is counted in")
	ErrCloseDate          = apierr.Invalid("opportunity.close_date", "must be a date YYYY-MM-DD")
	ErrUnknownContact     = apierr.Invalid("contact_id", "no contact with this id")
	ErrUnknownPipeline    = apierr.Invalid("opportunity.pipeline_id", "no pipeline with this id")
)

// maxLineItems is the most lines an order may have, so a deal never holds more than it can sell.
const maxLineItems = 100

// OpportunityStore persists opportunities.
type OpportunityStore interface {
	// SaveOpportunity writes w in one commit; ErrStale when w.Prev or the pipeline version is not
	// current, ErrUnknownAccount or ErrUnknownContact when a referenced record is gone.
	SaveOpportunity(ctx context.Context, tenant string, w *OpportunityWrite) error
	GetOpportunity(ctx context.Context, tenant, id string) (*Opportunity, error)
	ListOpportunities(ctx context.Context, tenant string, q Query) (page.Page[*Opportunity], error)
	// ForecastTotals returns a period's counters: field (owner, currency, metric) to value.
	ForecastTotals(ctx context.Context, tenant, period string) ([]ForecastCounter, error)
}

// OpportunityWrite is one atomic change of an opportunity.
type OpportunityWrite struct {
	// Opp is the new state; Prev the state it replaces (nil on create).
	Opp, Prev *Opportunity
	// PipelineVersion pins the pipeline the stage was taken from (PinPipeline false: not checked).
	PinPipeline     bool
	PipelineVersion string
	// Order is placed with the write (a win), with the change it makes to its customer's value.
	Order *Order
	Value *ValueWrite
	// Forecast are the counter changes the write makes.
	Forecast []ForecastCounter
	Events   [][]byte
}

// ForecastCounter is one forecast counter of a period: an owner's metric in a currency.
type ForecastCounter struct {
	Period, Owner, Currency, Metric string
	Value                           int64
}

// AmountKey is the sort key of an amount in the amount index: units then nanos, zero-padded.
func AmountKey(m *typev1.Money) string { return fmt.Sprintf("%019d%09d", m.GetUnits(), m.GetNanos()) }

// isOpen reports whether a deal is still in progress.
func isOpen(o *Opportunity) bool {
	return o.GetStatus() == salesv1.OpportunityStatus_OPPORTUNITY_STATUS_OPEN
}

// enterStage moves o into stage at ts, recording the move in its history.
func enterStage(o *Opportunity, s *salesv1.PipelineStage, ts time.Time) {
	o.StageHistory = append(o.StageHistory, &salesv1.StageChange{Stage: s.GetId(), FromStage: o.GetStage(), Time: timestampOf(ts)})
	o.Stage, o.Probability, o.ForecastCategory = s.GetId(), s.GetProbability(), s.GetForecastCategory()
}
