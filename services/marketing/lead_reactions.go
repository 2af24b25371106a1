package marketing

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/events"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// leadConverted marks the lead CONVERTED (from NEW, ENGAGED or MARKETING_QUALIFIED) and counts a
// conversion for its source campaign, in one commit under the event's redelivery guard.
func (r *Reactions) leadConverted(ctx context.Context, ev *eventv1.Event, p *salesv1.LeadConverted) error {
	tenant := ev.GetTenantId()
	for range engageAttempts {
		lead, err := r.store.GetLead(ctx, tenant, p.GetLeadId())
		if errors.Is(err, ErrLeadNotFound) {
			return nil // erased since, or converted from outside marketing
		}
		if err != nil {
			return err
		}
		from := lead.GetStatus()
		if from == marketingv1.LeadStatus_LEAD_STATUS_CONVERTED || from == marketingv1.LeadStatus_LEAD_STATUS_DISQUALIFIED {
			return nil
		}
		now := r.now().UTC()
		next := proto.CloneOf(lead)
		setStatus(next, marketingv1.LeadStatus_LEAD_STATUS_CONVERTED, now)
		touch(next, lead, now)
		_, out, err := r.publisher.Envelope(ctx, marketingv1.EventLeadConverted.Of(&marketingv1.LeadConverted{
			LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), From: from, SourceCampaignId: lead.GetCampaignId(), CauseEventId: ev.GetId(),
		}), tenant, lead.GetCustomerId(), now)
		if err != nil {
			return err
		}
		err = r.store.UpdateLead(ctx, tenant, LeadWrite{Lead: next, Prev: lead, Events: [][]byte{out}, Applied: events.EffectOf(ev, "lead")})
		if errors.Is(err, ErrStale) {
			continue
		}
		return applied(err)
	}
	return ErrContention
}
