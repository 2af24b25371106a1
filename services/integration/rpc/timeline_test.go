package rpc_test

import (
	"testing"
	"time"

	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestTimelineFollowsAMerge: the merged customer's events move to the survivor's timeline, an
// event about the merged id arriving later lands there too, and the merged id reads the
// survivor's timeline.
func TestTimelineFollowsAMerge(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	const survivor, merged = "cust-survivor", "cust-merged"
	want := map[string]bool{}
	want[s.publish(t, s.tenant, "sales.order.placed", survivor).GetId()] = true
	want[s.publish(t, s.tenant, "support.ticket.created", merged).GetId()] = true
	timeline := func(customer string) []*integrationv1.TimelineEntry {
		r, err := c.ListTimeline(ctx, &integrationv1.ListTimelineRequest{CustomerId: customer, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetTimelineEntries()
	}
	eventually(t, 10*time.Second, "both timelines", func() bool { return len(timeline(survivor)) == 1 && len(timeline(merged)) == 1 })
	want[s.publishBody(t, s.tenant, marketingv1.EventCustomerMerged.Of(&marketingv1.CustomerMerged{
		SurvivorCustomerId: survivor, MergedCustomerId: merged}), survivor).GetId()] = true
	eventually(t, 10*time.Second, "the merge", func() bool { return len(timeline(survivor)) == 3 })
	want[s.publish(t, s.tenant, "support.ticket.solved", merged).GetId()] = true
	eventually(t, 10*time.Second, "the late event", func() bool { return len(timeline(survivor)) == 4 })
	for _, customer := range []string{survivor, merged} {
		got := timeline(customer)
		for i, e := range got {
			if !want[e.GetId()] {
				t.Errorf("%s's timeline has %s", customer, e.GetId())
			}
			if i > 0 && got[i-1].GetId() < e.GetId() {
				t.Errorf("%s's timeline is not newest first", customer)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s reads %d entries, want the survivor's %d", customer, len(got), len(want))
		}
	}
}
