package marketing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of engagements and qualification.
var (
	ErrLeadStatus = apierr.New(apierr.FailedPrecondition, "LEAD_STATUS",
		"the lead's status does not allow this move")
	ErrUnknownEngagementCampaign = apierr.Invalid("engagement.campaign_id", "no campaign with this id")
	ErrEngagementInFuture        = apierr.Invalid("engagement.occurred_time", "must not be in the future")
)

// engageAttempts bounds optimistic retries of a lead change racing other writes to the same lead; a
// burst of engagements on one lead is normal (a page view per click), so it is generous.
const engageAttempts = 64

// clockSkew is how far in the future a client's occurred_time may be before it is refused.
const clockSkew = time.Minute

// leadMoves is the lead status machine: NEW -> ENGAGED -> MARKETING_QUALIFIED -> CONVERTED, with
// qualification by hand from NEW, and DISQUALIFIED from any status before CONVERTED.
var leadMoves = map[marketingv1.LeadStatus][]marketingv1.LeadStatus{
	marketingv1.LeadStatus_LEAD_STATUS_NEW: {marketingv1.LeadStatus_LEAD_STATUS_ENGAGED,
		marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED, marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED},
	marketingv1.LeadStatus_LEAD_STATUS_ENGAGED: {marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED,
		marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED},
	marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED: {marketingv1.LeadStatus_LEAD_STATUS_CONVERTED,
		marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED},
}

// CanMoveLead reports whether a lead may go from one status to another.
func CanMoveLead(from, to marketingv1.LeadStatus) bool {
	return slices.Contains(leadMoves[from], to)
}

// RecordEngagement adds an engagement to a lead and rescores it: a NEW lead becomes ENGAGED, and a
// lead whose score reaches the threshold qualifies, with its events in the same commit. Concurrent
// engagements serialize on the lead's etag, so exactly one of them sees the crossing.
func (l *Leads) RecordEngagement(ctx context.Context, tenant, leadID string, in *marketingv1.Engagement) (*marketingv1.Engagement, *Lead, error) {
	now := l.now().UTC()
	occurred := now
	if in.GetOccurredTime() != nil {
		occurred = in.GetOccurredTime().AsTime()
		if occurred.After(now.Add(clockSkew)) {
			return nil, nil, ErrEngagementInFuture
		}
		if occurred.After(now) {
			occurred = now
		}
	}
	rules, err := rulesOrDefaults(ctx, l.store, tenant)
	if err != nil {
		return nil, nil, err
	}
	eng := &marketingv1.Engagement{
		Id: uuid.Must(uuid.NewV7()).String(), Type: in.GetType(), CampaignId: in.GetCampaignId(),
		OccurredTime: timestamppb.New(occurred), Points: pointsFor(rules, in.GetType()),
	}
	for range engageAttempts {
		existing, err := l.store.GetLead(ctx, tenant, leadID)
		if err != nil {
			return nil, nil, err
		}
		lead := proto.CloneOf(existing)
		rescore(lead, rules, now, decayed(float64(eng.GetPoints()), now.Sub(occurred), rules.GetHalfLifeDays()))
		lead.EngagementCount++
		if lead.GetStatus() == marketingv1.LeadStatus_LEAD_STATUS_NEW {
			setStatus(lead, marketingv1.LeadStatus_LEAD_STATUS_ENGAGED, now)
		}
		w := LeadWrite{Lead: lead, Prev: existing, Campaign: eng.GetCampaignId()}
		if err := l.qualifyIfDue(ctx, tenant, &w, rules, now); err != nil {
			return nil, nil, err
		}
		touch(lead, existing, now)
		_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLeadEngaged.Of(&marketingv1.LeadEngaged{
			LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), Engagement: eng, Score: lead.GetScore(), Status: lead.GetStatus(),
		}), tenant, lead.GetCustomerId(), now)
		if err != nil {
			return nil, nil, err
		}
		w.Events = append([][]byte{ev}, w.Events...)
		err = l.store.UpdateLead(ctx, tenant, w)
		switch {
		case errors.Is(err, ErrStale):
			continue
		case errors.Is(err, ErrUnknownCampaign):
			return nil, nil, ErrUnknownEngagementCampaign
		case err != nil:
			return nil, nil, err
		}
		return eng, lead, nil
	}
	return nil, nil, ErrContention
}

// Qualify makes a NEW or ENGAGED lead MARKETING_QUALIFIED by hand; ifMatch as in moveLead.
func (l *Leads) Qualify(ctx context.Context, tenant, id, ifMatch string) (*Lead, error) {
	return l.moveLead(ctx, tenant, id, ifMatch, marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED, func(lead *Lead) eventv1.Body {
		return marketingv1.EventLeadQualified.Of(qualifiedPayload(lead, false))
	})
}

// Disqualify takes a lead out of the funnel, with a reason; ifMatch as in moveLead.
func (l *Leads) Disqualify(ctx context.Context, tenant, id, reason, ifMatch string) (*Lead, error) {
	return l.moveLead(ctx, tenant, id, ifMatch, marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED, func(lead *Lead) eventv1.Body {
		from := lead.GetStatus()
		lead.DisqualifyReason = reason
		return marketingv1.EventLeadDisqualified.Of(&marketingv1.LeadDisqualified{LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), Reason: reason, From: from})
	})
}

// moveLead moves a lead's status by hand along the status machine (FAILED_PRECONDITION otherwise),
// rescoring it to now; change adjusts the lead and names its event. A set ifMatch must be the etag
// of the lead the write replaces (ErrLeadEtag otherwise, before the status machine is asked): a
// write that loses a race reads again and checks it again.
func (l *Leads) moveLead(ctx context.Context, tenant, id, ifMatch string, to marketingv1.LeadStatus,
	change func(lead *Lead) eventv1.Body) (*Lead, error) {
	rules, err := rulesOrDefaults(ctx, l.store, tenant)
	if err != nil {
		return nil, err
	}
	for range engageAttempts {
		existing, err := l.store.GetLead(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if err := etag.Check(ifMatch, existing.GetEtag(), ErrLeadEtag); err != nil {
			return nil, err
		}
		if !CanMoveLead(existing.GetStatus(), to) {
			refused := ErrLeadStatus.With("move", existing.GetStatus().String()+" -> "+to.String())
			refused.Message = fmt.Sprintf("a %s lead cannot become %s", existing.GetStatus(), to)
			return nil, refused
		}
		now := l.now().UTC()
		lead := proto.CloneOf(existing)
		rescore(lead, rules, now, 0)
		event := change(lead)
		setStatus(lead, to, now)
		touch(lead, existing, now)
		_, ev, err := l.publisher.Envelope(ctx, event, tenant, lead.GetCustomerId(), now)
		if err != nil {
			return nil, err
		}
		err = l.store.UpdateLead(ctx, tenant, LeadWrite{Lead: lead, Prev: existing, Events: [][]byte{ev}})
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return lead, nil
	}
	return nil, ErrContention
}

// qualifyIfDue qualifies w.Lead when its score reaches the threshold, adding the event to w.
func (l *Leads) qualifyIfDue(ctx context.Context, tenant string, w *LeadWrite, rules *ScoringRules, now time.Time) error {
	if !reachesThreshold(w.Lead, rules) {
		return nil
	}
	setStatus(w.Lead, marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED, now)
	_, ev, err := l.publisher.Envelope(ctx, marketingv1.EventLeadQualified.Of(qualifiedPayload(w.Lead, true)), tenant, w.Lead.GetCustomerId(), now)
	if err != nil {
		return err
	}
	w.Events = append(w.Events, ev)
	return nil
}

func qualifiedPayload(lead *Lead, automatic bool) *marketingv1.LeadQualified {
	return &marketingv1.LeadQualified{LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), Score: lead.GetScore(),
		Automatic: automatic, SourceCampaignId: lead.GetCampaignId()}
}

func setStatus(lead *Lead, to marketingv1.LeadStatus, now time.Time) {
	lead.Status = to
	lead.StatusTime = timestamppb.New(now)
}

// touch stamps a changed lead with its update time and next etag.
func touch(lead, prev *Lead, now time.Time) {
	lead.UpdateTime = timestamppb.New(now)
	lead.Etag = etag.Next(prev.GetEtag())
}
