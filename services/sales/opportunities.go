package sales

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/money"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// defaultCloseAfter is the expected close date of a deal that names none.
const defaultCloseAfter = 90 * 24 * time.Hour

var updatableOpportunityFields = []string{"display_name", "amount", "close_date", "owner_id"}

// Opportunities are the opportunity use cases.
type Opportunities struct {
	Env
	pipelines *Pipelines
	pricer    Pricer
}

// NewOpportunities returns the use cases; pricer reaches the product service.
func NewOpportunities(env Env, pricer Pricer) *Opportunities {
	return &Opportunities{Env: env, pipelines: NewPipelines(env), pricer: pricer}
}

// open builds a new deal in the first open stage of its pipeline, for contact (may be nil).
func (o *Opportunities) open(in *Opportunity, pipeline *Pipeline, contact *Contact) (*Opportunity, error) {
	now := o.Now().UTC()
	currency := in.GetCurrencyCode()
	if currency == "" {
		currency = cmp.Or(in.GetAmount().GetCurrencyCode(), defaultCurrency)
	}
	amount := in.GetAmount()
	if amount == nil {
		amount = money.Zero(currency)
	}
	if amount.GetCurrencyCode() != currency || money.Sign(amount) < 0 {
		return nil, ErrAmount
	}
	closeDate := in.GetCloseDate()
	if closeDate == "" {
		closeDate = now.Add(defaultCloseAfter).Format(time.DateOnly)
	}
	if _, err := time.Parse(time.DateOnly, closeDate); err != nil {
		return nil, ErrCloseDate
	}
	opp := &Opportunity{
		Id: uuid.Must(uuid.NewV7()).String(), DisplayName: in.GetDisplayName(), AccountId: in.GetAccountId(),
		ContactId: in.GetContactId(), PipelineId: pipeline.GetId(), Amount: amount, CurrencyCode: currency,
		CloseDate: closeDate, OwnerId: in.GetOwnerId(), Status: salesv1.OpportunityStatus_OPPORTUNITY_STATUS_OPEN,
		CreateTime: timestampOf(now), UpdateTime: timestampOf(now), Etag: etag.First,
	}
	if contact != nil {
		opp.ContactId, opp.CustomerId, opp.CampaignId, opp.LeadId = contact.GetId(), contact.GetCustomerId(), contact.GetCampaignId(), contact.GetLeadId()
		if opp.AccountId == "" {
			opp.AccountId = contact.GetAccountId()
		}
	}
	if opp.AccountId == "" && opp.ContactId == "" {
		return nil, ErrNoParty
	}
	enterStage(opp, stageWith(pipeline, salesv1.StageOutcome_STAGE_OUTCOME_OPEN), now)
	return opp, nil
}

// pipeline reads the pipeline a new deal names, as a field error when it does not exist.
func (o *Opportunities) pipeline(ctx context.Context, tenant, id string) (*Pipeline, error) {
	p, err := o.pipelines.Get(ctx, tenant, id)
	if errors.Is(err, ErrPipelineNotFound) {
		return nil, ErrUnknownPipeline
	}
	return p, err
}

// creation is the write that opens a deal, pinned to the pipeline it was opened in.
func (o *Opportunities) creation(ctx context.Context, tenant string, opp *Opportunity, pipeline *Pipeline) (*OpportunityWrite, error) {
	event, err := o.event(ctx, salesv1.EventOpportunityCreated.Of(&salesv1.OpportunityChanged{Opportunity: opp}), tenant, opp.GetCustomerId())
	if err != nil {
		return nil, err
	}
	forecast, err := forecastDelta(nil, opp)
	if err != nil {
		return nil, err
	}
	return &OpportunityWrite{Opp: opp, PinPipeline: true, PipelineVersion: PipelineVersion(pipeline),
		Forecast: forecast, Events: [][]byte{event}}, nil
}

// Create opens a deal in the first open stage of its pipeline (the default when empty).
func (o *Opportunities) Create(ctx context.Context, tenant string, in *Opportunity) (*Opportunity, error) {
	var contact *Contact
	if in.GetContactId() != "" {
		c, err := o.Store.GetContact(ctx, tenant, in.GetContactId())
		if errors.Is(err, ErrContactNotFound) {
			return nil, ErrUnknownContact
		}
		if err != nil {
			return nil, err
		}
		contact = c
	}
	for range writeAttempts {
		pipeline, err := o.pipeline(ctx, tenant, in.GetPipelineId())
		if err != nil {
			return nil, err
		}
		opp, err := o.open(in, pipeline, contact)
		if err != nil {
			return nil, err
		}
		w, err := o.creation(ctx, tenant, opp, pipeline)
		if err != nil {
			return nil, err
		}
		err = o.Store.SaveOpportunity(ctx, tenant, w)
		if errors.Is(err, ErrStale) {
			continue // the pipeline changed meanwhile
		}
		return opp, err
	}
	return nil, ErrContention
}

// Get returns one deal.
func (o *Opportunities) Get(ctx context.Context, tenant, id string) (*Opportunity, error) {
	return o.Store.GetOpportunity(ctx, tenant, id)
}

// List returns a page of deals.
func (o *Opportunities) List(ctx context.Context, tenant string, q Query) (page.Page[*Opportunity], error) {
	return o.Store.ListOpportunities(ctx, tenant, q)
}

// Update changes an open deal's name, estimated amount, close date or owner; without an etag, a
// deal changed meanwhile is read again and changed as it is now.
func (o *Opportunities) Update(ctx context.Context, tenant string, in *Opportunity, mask *fieldmaskpb.FieldMask) (*Opportunity, error) {
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("opportunity.id", "must be an opportunity id (UUID)")
	}
	fields, err := protoupdate.Fields(in, mask, updatableOpportunityFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrContention, func() (*Opportunity, error) {
		existing, err := o.Store.GetOpportunity(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		if err := etag.Check(in.GetEtag(), existing.GetEtag(), ErrOpportunityEtag); err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			if err := fields.Unchanged(existing, in); err != nil {
				return nil, err
			}
			return existing, nil
		}
		if !isOpen(existing) {
			return nil, ErrOpportunityClosed
		}
		merged := proto.CloneOf(existing)
		if err := protoupdate.Apply(merged, in, fields); err != nil {
			return nil, err
		}
		if !proto.Equal(merged.GetAmount(), existing.GetAmount()) && len(existing.GetLineItems()) > 0 {
			return nil, ErrAmountFixed
		}
		if merged.Amount == nil {
			merged.Amount = money.Zero(merged.GetCurrencyCode())
		}
		if merged.GetAmount().GetCurrencyCode() != merged.GetCurrencyCode() || money.Sign(merged.GetAmount()) < 0 {
			return nil, ErrAmount
		}
		if merged.CloseDate == "" {
			merged.CloseDate = existing.GetCloseDate()
		}
		if err := protoupdate.Validate(o.Validator, "opportunity", merged); err != nil {
			return nil, err
		}
		if _, err := time.Parse(time.DateOnly, merged.GetCloseDate()); err != nil {
			return nil, ErrCloseDate
		}
		return o.save(ctx, tenant, merged, existing)
	})
}

// save writes an opportunity change that needs no pipeline pin or order, with its event.
func (o *Opportunities) save(ctx context.Context, tenant string, opp, prev *Opportunity) (*Opportunity, error) {
	opp.UpdateTime = timestampOf(o.Now())
	opp.Etag = etag.Next(prev.GetEtag())
	event, err := o.event(ctx, salesv1.EventOpportunityUpdated.Of(&salesv1.OpportunityChanged{Opportunity: opp}), tenant, opp.GetCustomerId())
	if err != nil {
		return nil, err
	}
	forecast, err := forecastDelta(prev, opp)
	if err != nil {
		return nil, err
	}
	if err := o.Store.SaveOpportunity(ctx, tenant, &OpportunityWrite{Opp: opp, Prev: prev, Forecast: forecast, Events: [][]byte{event}}); err != nil {
		return nil, err
	}
	return opp, nil
}

// AddLineItem prices a line through the product service now and adds it to an open deal, whose
// amount becomes the sum of its lines. The quote is taken once; racing writes only re-read the deal.
func (o *Opportunities) AddLineItem(ctx context.Context, tenant, id string, in *OrderLine) (*Opportunity, *OrderLine, error) {
	existing, err := o.Store.GetOpportunity(ctx, tenant, id)
	if err != nil {
		return nil, nil, err
	}
	if !isOpen(existing) {
		return nil, nil, ErrOpportunityClosed
	}
	if len(existing.GetLineItems()) >= maxLineItems {
		return nil, nil, ErrLinesFull
	}
	priced, err := o.pricer.Price(ctx, existing.GetCurrencyCode(), requestLines([]*OrderLine{in}))
	if err != nil {
		return nil, nil, notSellableField(err, func(string) string { return "line_item.product_id" })
	}
	line := priced[0]
	for range writeAttempts {
		if !isOpen(existing) {
			return nil, nil, ErrOpportunityClosed
		}
		if len(existing.GetLineItems()) >= maxLineItems {
			return nil, nil, ErrLinesFull
		}
		opp := proto.CloneOf(existing)
		opp.LineItems = append(opp.LineItems, line)
		if opp.Amount, err = linesTotal(opp.GetCurrencyCode(), opp.GetLineItems()); err != nil {
			return nil, nil, err
		}
		saved, err := o.save(ctx, tenant, opp, existing)
		if !errors.Is(err, ErrStale) {
			return saved, line, err
		}
		if existing, err = o.Store.GetOpportunity(ctx, tenant, id); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, ErrContention
}

// transition is one status or stage change of an open deal, computed from its current state.
type transition func(opp *Opportunity, pipeline *Pipeline, now time.Time) (events []eventv1.Body, order *Order, err error)

// change applies t to the current state of deal id, retrying when a concurrent write (or a
// pipeline edit) lands first, so concurrent moves serialize and the history stays a chain. With
// ifMatch set, the write is conditional on the version it was checked against: when the deal
// changed meanwhile, the retry's read finds a new etag and answers ABORTED, while a pipeline edit
// alone is retried as without it.
func (o *Opportunities) change(ctx context.Context, tenant, id, ifMatch string, t transition) (*Opportunity, *Order, error) {
	for range writeAttempts {
		existing, err := o.Store.GetOpportunity(ctx, tenant, id)
		if err != nil {
			return nil, nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrOpportunityEtag); err != nil {
			return nil, nil, err
		}
		if !isOpen(existing) {
			return nil, nil, ErrOpportunityClosed
		}
		pipeline, err := o.pipelines.Get(ctx, tenant, existing.GetPipelineId())
		if err != nil {
			return nil, nil, err
		}
		now := o.Now().UTC()
		opp := proto.CloneOf(existing)
		pending, order, err := t(opp, pipeline, now)
		if err != nil {
			return nil, nil, err
		}
		if pending == nil {
			return existing, nil, nil
		}
		opp.UpdateTime = timestampOf(now)
		opp.Etag = etag.Next(existing.GetEtag())
		forecast, err := forecastDelta(existing, opp)
		if err != nil {
			return nil, nil, err
		}
		w := &OpportunityWrite{Opp: opp, Prev: existing, PinPipeline: true, PipelineVersion: PipelineVersion(pipeline),
			Order: order, Forecast: forecast}
		for _, e := range pending {
			data, err := o.event(ctx, e, tenant, opp.GetCustomerId())
			if err != nil {
				return nil, nil, err
			}
			w.Events = append(w.Events, data)
		}
		if order != nil {
			value, event, err := o.valueWrite(ctx, tenant, order)
			if err != nil {
				return nil, nil, err
			}
			w.Value, w.Events = value, append(w.Events, event)
		}
		err = o.Store.SaveOpportunity(ctx, tenant, w)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return opp, order, nil
	}
	return nil, nil, ErrContention
}

// Move puts an open deal into another open stage of its pipeline; moving to the stage it is in
// changes nothing.
func (o *Opportunities) Move(ctx context.Context, tenant, id, stage, ifMatch string) (*Opportunity, error) {
	opp, _, err := o.change(ctx, tenant, id, ifMatch, func(opp *Opportunity, pipeline *Pipeline, now time.Time) ([]eventv1.Body, *Order, error) {
		s := stageOf(pipeline, stage)
		switch {
		case s == nil:
			return nil, nil, ErrUnknownStage
		case s.GetOutcome() != salesv1.StageOutcome_STAGE_OUTCOME_OPEN:
			return nil, nil, ErrClosedStage
		case s.GetId() == opp.GetStage():
			return nil, nil, nil
		}
		from := opp.GetStage()
		enterStage(opp, s, now)
		return []eventv1.Body{salesv1.EventOpportunityStageChanged.Of(&salesv1.OpportunityStageChanged{
			OpportunityId: opp.GetId(), CustomerId: opp.GetCustomerId(), CampaignId: opp.GetCampaignId(),
			FromStage: from, ToStage: s.GetId(), Probability: s.GetProbability(),
		})}, nil, nil
	})
	return opp, err
}

// Win closes an open deal with line items and a contact as won and places its order at the
// prices quoted when the lines were added, in the same write: two concurrent wins place one order.
// A stale ifMatch is ABORTED.
func (o *Opportunities) Win(ctx context.Context, tenant, id, ifMatch string) (*Opportunity, *Order, error) {
	return o.change(ctx, tenant, id, ifMatch, func(opp *Opportunity, pipeline *Pipeline, now time.Time) ([]eventv1.Body, *Order, error) {
		if len(opp.GetLineItems()) == 0 {
			return nil, nil, ErrNoLineItems
		}
		if opp.GetCustomerId() == "" {
			return nil, nil, ErrNoCustomer
		}
		total, err := linesTotal(opp.GetCurrencyCode(), opp.GetLineItems())
		if err != nil {
			return nil, nil, err
		}
		order := &Order{
			Id: uuid.Must(uuid.NewV7()).String(), CustomerId: opp.GetCustomerId(), AccountId: opp.GetAccountId(),
			OpportunityId: opp.GetId(), Lines: opp.GetLineItems(), CurrencyCode: opp.GetCurrencyCode(),
			Total:      total,
			CampaignId: opp.GetCampaignId(), CreateTime: timestampOf(now), UpdateTime: timestampOf(now), Etag: etag.First,
		}
		closeDeal(opp, pipeline, salesv1.StageOutcome_STAGE_OUTCOME_WON, now)
		opp.OrderId = order.GetId()
		return []eventv1.Body{
			salesv1.EventOpportunityWon.Of(&salesv1.OpportunityWon{Opportunity: opp, OrderId: order.GetId()}),
			salesv1.EventOrderPlaced.Of(&salesv1.OrderPlaced{Order: order}),
		}, order, nil
	})
}

// Lose closes an open deal as lost, with the reason; a stale ifMatch is ABORTED.
func (o *Opportunities) Lose(ctx context.Context, tenant, id, reason, ifMatch string) (*Opportunity, error) {
	opp, _, err := o.change(ctx, tenant, id, ifMatch, func(opp *Opportunity, pipeline *Pipeline, now time.Time) ([]eventv1.Body, *Order, error) {
		closeDeal(opp, pipeline, salesv1.StageOutcome_STAGE_OUTCOME_LOST, now)
		opp.LostReason = reason
		return []eventv1.Body{salesv1.EventOpportunityLost.Of(&salesv1.OpportunityLost{Opportunity: opp})}, nil, nil
	})
	return opp, err
}

// closeDeal moves a deal into its pipeline's WON or LOST stage; its close date becomes today, so the
// forecast counts it in the period it closed.
func closeDeal(opp *Opportunity, pipeline *Pipeline, outcome salesv1.StageOutcome, now time.Time) {
	enterStage(opp, stageWith(pipeline, outcome), now)
	opp.Status = salesv1.OpportunityStatus_OPPORTUNITY_STATUS_WON
	if outcome == salesv1.StageOutcome_STAGE_OUTCOME_LOST {
		opp.Status = salesv1.OpportunityStatus_OPPORTUNITY_STATUS_LOST
	}
	opp.CloseTime = timestampOf(now)
	opp.CloseDate = now.Format(time.DateOnly)
}
