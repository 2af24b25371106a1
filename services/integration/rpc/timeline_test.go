package rpc_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/customerref"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// TestTimelineFollowsAMerge: the merged customer's events move to the survivor's timeline, an
// event about the merged id arriving later lands there too, and the merged id reads the
// survivor's timeline.
func TestTimelineFollowsAMerge(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	const survivor, merged = "0192f3a0-0000-7000-8000-00000000a001", "0192f3a0-0000-7000-8000-00000000a002"
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

// TestTimelineOfAnUnknownCustomer: a customer id the tenant does not have is 404 NOT_FOUND
// CUSTOMER_NOT_FOUND naming customerId, over gRPC and REST, as the other reads of a customer
// answer; a known customer integration has recorded nothing about yet reads an empty timeline; an
// erased customer keeps its entries (non-personal, the erasure last); a merged id whose merge
// integration has not recorded yet reads the survivor's timeline.
func TestTimelineOfAnUnknownCustomer(t *testing.T) {
	s := startSystem(t, fastWebhooks)
	c, ctx := s.client()
	edge := gatewaytest.Start(t, s.suite, gateway.Config{})
	const (
		nobody   = "0192f3a0-0000-7000-8000-00000000b001"
		fresh    = "0192f3a0-0000-7000-8000-00000000b002"
		erased   = "0192f3a0-0000-7000-8000-00000000b003"
		survivor = "0192f3a0-0000-7000-8000-00000000b004"
		merged   = "0192f3a0-0000-7000-8000-00000000b005"
	)
	s.registry.Forget(nobody)
	s.registry.Forget(erased)
	s.registry.Merge(merged, survivor)
	s.publish(t, s.tenant, "sales.order.placed", erased)
	s.publish(t, s.tenant, "marketing.customer.erased", erased)
	s.publish(t, s.tenant, "sales.order.placed", survivor)
	count := func(customer string) int {
		r, err := c.ListTimeline(ctx, &integrationv1.ListTimelineRequest{CustomerId: customer, PageSize: 100})
		if err != nil {
			return -1
		}
		return len(r.GetTimelineEntries())
	}
	eventually(t, 10*time.Second, "the recorded events", func() bool { return count(erased) == 2 && count(survivor) == 1 })

	_, err := c.ListTimeline(ctx, &integrationv1.ListTimelineRequest{CustomerId: nobody})
	if status.Code(err) != codes.NotFound || reasonOf(err) != customerref.ReasonNotFound {
		t.Errorf("ListTimeline of an unknown customer: %v, want NotFound %s", err, customerref.ReasonNotFound)
	}
	r := edge.Do(t, http.MethodGet, "/v1/customers/"+nobody+"/timeline", s.key, nil)
	if r.Status != http.StatusNotFound || r.ErrorStatus(t) != "NOT_FOUND" || !slices.Equal(r.FieldViolations(t), []string{"customerId"}) ||
		!strings.Contains(string(r.Body), customerref.ReasonNotFound) {
		t.Errorf("GET the timeline of an unknown customer: %d %s, want 404 NOT_FOUND %s naming customerId", r.Status, r.Body, customerref.ReasonNotFound)
	}

	for customer, want := range map[string]int{fresh: 0, erased: 2, merged: 1, survivor: 1} {
		if got := count(customer); got != want {
			t.Errorf("ListTimeline of %s: %d entries, want %d", customer, got, want)
		}
	}
	if r := edge.Do(t, http.MethodGet, "/v1/customers/"+fresh+"/timeline", s.key, nil); r.Status != http.StatusOK {
		t.Errorf("GET the timeline of a known customer without events: %d %s, want 200", r.Status, r.Body)
	}
}

// reasonOf is a gRPC error's ErrorInfo reason, if any.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
