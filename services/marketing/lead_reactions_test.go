package marketing_test

import (
	"context"
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

func TestLeadConvertedMarksTheLeadOnceAndCountsTheConversion(t *testing.T) {
	f := newReactionFixture(t)
	camp := f.campaign(t, "spring")
	lead := f.capture(t, "conv@example.com", camp.GetId(), "")
	f.deliverTwice(t, f.publish(t, salesv1.EventLeadConverted.Of(&salesv1.LeadConverted{LeadId: lead.GetId(), CustomerId: lead.GetCustomerId(), CampaignId: camp.GetId()}), lead.GetCustomerId()))

	got, err := f.leads.Get(context.Background(), f.tenant, lead.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_CONVERTED {
		t.Fatalf("lead status = %v, want CONVERTED", got.GetStatus())
	}
	if n := f.performance(t, camp.GetId()).GetConversions(); n != 1 {
		t.Fatalf("conversions = %d, want 1", n)
	}
	evs := f.events(t, marketingv1.EventLeadConverted.Name)
	if len(evs) != 1 {
		t.Fatalf("%d marketing.lead.converted events, want 1", len(evs))
	}

	// A disqualified lead stays out of the funnel.
	out := f.capture(t, "out@example.com", camp.GetId(), "")
	if _, err := f.leads.Disqualify(context.Background(), f.tenant, out.GetId(), "competitor", ""); err != nil {
		t.Fatal(err)
	}
	f.deliverTwice(t, f.publish(t, salesv1.EventLeadConverted.Of(&salesv1.LeadConverted{LeadId: out.GetId()}), out.GetCustomerId()))
	if n := f.performance(t, camp.GetId()).GetConversions(); n != 1 {
		t.Fatalf("conversions after a disqualified lead's conversion = %d, want 1", n)
	}
}
