package marketing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// moveAttempts bounds optimistic retries of a status move racing other writes.
const moveAttempts = 8

// Campaigns are the campaign use cases.
type Campaigns struct {
	store     CampaignStore
	publisher events.Publisher
	now       func() time.Time
	validator protovalidate.Validator
}

// NewCampaigns returns the use cases over store.
func NewCampaigns(store CampaignStore, publisher events.Publisher, validator protovalidate.Validator, now func() time.Time) *Campaigns {
	return &Campaigns{store: store, publisher: publisher, now: now, validator: validator}
}

// Create makes a campaign in DRAFT.
func (c *Campaigns) Create(ctx context.Context, tenant string, in *Campaign) (*Campaign, error) {
	if err := sameCurrency(in); err != nil {
		return nil, err
	}
	ts := timestamppb.New(c.now().UTC())
	camp := &Campaign{
		Id:              uuid.Must(uuid.NewV7()).String(),
		DisplayName:     in.GetDisplayName(),
		Channel:         in.GetChannel(),
		Budget:          in.GetBudget(),
		ActualCost:      in.GetActualCost(),
		StartTime:       in.GetStartTime(),
		EndTime:         in.GetEndTime(),
		TargetSegmentId: in.GetTargetSegmentId(),
		Status:          marketingv1.CampaignStatus_CAMPAIGN_STATUS_DRAFT,
		CreateTime:      ts,
		UpdateTime:      ts,
		Etag:            etag.First,
	}
	event, err := c.event(ctx, tenant, marketingv1.EventCampaignCreated, camp)
	if err != nil {
		return nil, err
	}
	return camp, c.store.CreateCampaign(ctx, tenant, camp, event)
}

// Get returns one campaign.
func (c *Campaigns) Get(ctx context.Context, tenant, id string) (*Campaign, error) {
	return c.store.GetCampaign(ctx, tenant, id)
}

// GetMany returns campaigns by id, in order: all, or ErrCampaignNotFound naming the missing.
func (c *Campaigns) GetMany(ctx context.Context, tenant string, ids []string) ([]*Campaign, error) {
	found, err := c.store.GetCampaigns(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	return batch.All(found, ids, ErrCampaignNotFound)
}

// List returns a page of campaigns, newest first.
func (c *Campaigns) List(ctx context.Context, tenant string, q CampaignQuery) (page.Page[*Campaign], error) {
	return c.store.ListCampaigns(ctx, tenant, q)
}

// Update changes the fields named by mask (when it is empty, the fields `in` sets). An etag that
// is not the current one is ABORTED; the merged campaign is validated as a whole.
func (c *Campaigns) Update(ctx context.Context, tenant string, in *Campaign, mask *fieldmaskpb.FieldMask) (*Campaign, error) {
	if in == nil {
		return nil, apierr.Invalid("campaign", "required")
	}
	if _, err := uuid.Parse(in.GetId()); err != nil {
		return nil, apierr.Invalid("campaign.id", "must be a campaign id (UUID)")
	}
	update, err := protoupdate.Fields(in, mask, updatableCampaignFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrCampaignContention, func() (*Campaign, error) {
		existing, err := c.store.GetCampaign(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		merged, err := protoupdate.Merge(c.validator, "campaign", existing, in, update, ErrCampaignEtag)
		if err != nil {
			return nil, err
		}
		if len(update.Fields) == 0 { // nothing to change: no write, no new etag
			return existing, nil
		}
		if err := sameCurrency(merged); err != nil {
			return nil, err
		}
		merged.UpdateTime = timestamppb.New(c.now().UTC())
		merged.Etag = etag.Next(existing.GetEtag())
		event, err := c.event(ctx, tenant, marketingv1.EventCampaignUpdated, merged)
		if err != nil {
			return nil, err
		}
		if err := c.store.UpdateCampaign(ctx, tenant, merged, existing, event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}

// Move changes a campaign's status along the status machine; an illegal move is FAILED_PRECONDITION.
// A set ifMatch must be the etag of the campaign the write replaces (ErrCampaignEtag otherwise,
// before the status machine is asked): a write that loses a race reads again and checks it again.
func (c *Campaigns) Move(ctx context.Context, tenant, id, ifMatch string,
	to marketingv1.CampaignStatus) (*Campaign, error) {
	for range moveAttempts {
		existing, err := c.store.GetCampaign(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrCampaignEtag); err != nil {
			return nil, err
		}
		if !canMove(existing.GetStatus(), to) {
			refused := ErrCampaignStatus.With("move", describeMove(existing.GetStatus(), to))
			refused.Message = fmt.Sprintf("a %s campaign cannot become %s", existing.GetStatus(), to)
			return nil, refused
		}
		moved := proto.CloneOf(existing)
		moved.Status = to
		moved.UpdateTime = timestamppb.New(c.now().UTC())
		moved.Etag = etag.Next(existing.GetEtag())
		event, err := c.event(ctx, tenant, movedEvents[to], moved)
		if err != nil {
			return nil, err
		}
		err = c.store.UpdateCampaign(ctx, tenant, moved, existing, event)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return moved, nil
	}
	return nil, ErrCampaignContention
}

// Performance returns a campaign's results from its counters.
func (c *Campaigns) Performance(ctx context.Context, tenant, id string) (*marketingv1.CampaignPerformance, error) {
	camp, err := c.store.GetCampaign(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	counters, err := c.store.CampaignCounters(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return performance(camp, counters)
}

// movedEvents are the events of the statuses Move leads to.
var movedEvents = map[marketingv1.CampaignStatus]eventv1.Type[*marketingv1.CampaignChanged]{
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_ACTIVE:    marketingv1.EventCampaignLaunched,
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED:    marketingv1.EventCampaignPaused,
	marketingv1.CampaignStatus_CAMPAIGN_STATUS_COMPLETED: marketingv1.EventCampaignCompleted,
}

func (c *Campaigns) event(ctx context.Context, tenant string, eventType eventv1.Type[*marketingv1.CampaignChanged], camp *Campaign) ([]byte, error) {
	_, data, err := c.publisher.Envelope(ctx, eventType.Of(&marketingv1.CampaignChanged{Campaign: camp}), tenant, "", c.now())
	return data, err
}

func sameCurrency(c *Campaign) error {
	if c.GetBudget() != nil && c.GetActualCost() != nil &&
		c.GetBudget().GetCurrencyCode() != c.GetActualCost().GetCurrencyCode() {
		return ErrCampaignCurrency
	}
	return nil
}
