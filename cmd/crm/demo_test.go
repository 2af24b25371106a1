package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"testing"
	"time"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// TestDemoSeedAgreesWithAnIndependentCount seeds a tenant as `crm dev --demo` does, then checks
// that the funnel (counters kept on each lifecycle move) and each campaign's leads and conversions
// (counters kept by captures and by the conversion reaction) agree with counts made from the
// customers' and leads' own records, once the reactions on the bus have settled.
//
// It travels in time as `crm dev --demo` does (the services' clock set in each wave's month), so
// the funnel shows every rung of the ladder: the imported SUSPECTs, PROSPECTs, first-time and
// repeat customers, CLIENTs, ADVOCATEs, and the first wave's buyers CHURNED.
func TestDemoSeedAgreesWithAnIndependentCount(t *testing.T) {
	clock := &demoClock{}
	sys := startSystemAt(t, clock.Now)
	_, key := sys.newKey(t, "", "admin")
	if err := seedDemo(context.Background(), sys.grpc, key, io.Discard, clock.set); err != nil {
		t.Fatal(err)
	}
	client, ctx := sys.marketing(key)
	customers := map[string]bool{}
	for i := range demoImports {
		r, err := client.ResolveCustomer(ctx, &marketingv1.ResolveCustomerRequest{Email: demoImportEmail(i)})
		if err != nil {
			t.Fatal(err)
		}
		customers[r.GetCustomer().GetCustomerId()] = true
	}

	var leads []*marketingv1.Lead
	for token := ""; ; {
		page, err := client.ListLeads(ctx, &marketingv1.ListLeadsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		leads = append(leads, page.GetLeads()...)
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(leads) != demoSize {
		t.Fatalf("%d leads listed, want %d", len(leads), demoSize)
	}

	type counts struct{ funnel, independent map[string]int64 }
	countStages := func() counts {
		c := counts{funnel: map[string]int64{}, independent: map[string]int64{}}
		f, err := client.GetLifecycleFunnel(ctx, &marketingv1.GetLifecycleFunnelRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range f.GetFunnel().GetStages() {
			if s.GetCustomers() > 0 {
				c.funnel[s.GetStage().String()] = s.GetCustomers()
			}
		}
		for _, l := range leads {
			customers[l.GetCustomerId()] = true
		}
		for customer := range customers {
			lc, err := client.GetCustomerLifecycle(ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
			if err != nil {
				t.Fatal(err)
			}
			c.independent[lc.GetLifecycle().GetStage().String()]++
		}
		return c
	}
	got := waitForLong(t, "the funnel to match the customers' stages", countStages, func(c counts) bool {
		return maps.Equal(c.funnel, c.independent)
	})
	for _, stage := range marketing.AllStages {
		if got.funnel[stage.String()] == 0 {
			t.Errorf("funnel %v: no customer is %s", got.funnel, stage)
		}
	}

	type campaignCounts struct{ performance, independent map[string][2]int64 }
	countCampaigns := func() campaignCounts {
		c := campaignCounts{performance: map[string][2]int64{}, independent: map[string][2]int64{}}
		for _, l := range leads {
			lead, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: l.GetId()})
			if err != nil {
				t.Fatal(err)
			}
			n := c.independent[l.GetCampaignId()]
			n[0]++
			if lead.GetLead().GetStatus() == marketingv1.LeadStatus_LEAD_STATUS_CONVERTED {
				n[1]++
			}
			c.independent[l.GetCampaignId()] = n
		}
		for id := range c.independent {
			p, err := client.GetCampaignPerformance(ctx, &marketingv1.GetCampaignPerformanceRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			c.performance[id] = [2]int64{p.GetPerformance().GetLeads(), p.GetPerformance().GetConversions()}
		}
		return c
	}
	waitForLong(t, "campaign leads and conversions to match the leads", countCampaigns, func(c campaignCounts) bool {
		return maps.Equal(c.performance, c.independent)
	})
}

// waitForLong polls get until ok, for checks that read hundreds of records per round.
func waitForLong[T any](t *testing.T, what string, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 60s", what, fmt.Sprint(v))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
