package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// etagTarget is one resource whose etag the custom methods check, as the tests drive it.
type etagTarget struct {
	client marketingv1.MarketingServiceClient
	ctx    context.Context
	t      *testing.T
}

func (e etagTarget) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// lead captures a new lead (NEW, its person a new PROSPECT) and returns its id.
func (e etagTarget) lead() string {
	e.t.Helper()
	r, err := e.client.CaptureLead(e.ctx, &marketingv1.CaptureLeadRequest{
		Lead: &marketingv1.Lead{Email: uuid.NewString() + "@example.com"}})
	e.must(err)
	return r.GetLead().GetId()
}

// customer is the customer of a new lead: a PROSPECT with a lifecycle.
func (e etagTarget) customer() string {
	e.t.Helper()
	r, err := e.client.GetLead(e.ctx, &marketingv1.GetLeadRequest{Id: e.lead()})
	e.must(err)
	return r.GetLead().GetCustomerId()
}

// campaign creates a campaign, launched when active is set.
func (e etagTarget) campaign(active bool) string {
	e.t.Helper()
	r, err := e.client.CreateCampaign(e.ctx, &marketingv1.CreateCampaignRequest{Campaign: &marketingv1.Campaign{
		DisplayName: "etag", Channel: typev1.Channel_CHANNEL_EMAIL}})
	e.must(err)
	if active {
		_, err = e.client.LaunchCampaign(e.ctx, &marketingv1.LaunchCampaignRequest{Id: r.GetCampaign().GetId()})
		e.must(err)
	}
	return r.GetCampaign().GetId()
}

// readLead, readCampaign, readLifecycle and readSegment are a resource's etag and what the methods
// change about it; NOT_FOUND is the error.
func (e etagTarget) readLead(id string) (string, string, error) {
	r, err := e.client.GetLead(e.ctx, &marketingv1.GetLeadRequest{Id: id})
	return r.GetLead().GetEtag(), r.GetLead().GetStatus().String(), err
}

func (e etagTarget) readCampaign(id string) (string, string, error) {
	r, err := e.client.GetCampaign(e.ctx, &marketingv1.GetCampaignRequest{Id: id})
	return r.GetCampaign().GetEtag(), r.GetCampaign().GetStatus().String(), err
}

func (e etagTarget) readLifecycle(customer string) (string, string, error) {
	r, err := e.client.GetCustomerLifecycle(e.ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
	lc := r.GetLifecycle()
	return lc.GetEtag(), fmt.Sprintf("%s at risk %v", lc.GetStage(), lc.GetAtRiskReasons()), err
}

func (e etagTarget) readSegment(id string) (string, string, error) {
	r, err := e.client.GetSegment(e.ctx, &marketingv1.GetSegmentRequest{Id: id})
	return r.GetSegment().GetEtag(), r.GetSegment().GetDisplayName(), err
}

// etagMethod is one method that takes the etag of the resource it changes.
type etagMethod struct {
	name string
	// setup makes a resource the method may change and returns its id.
	setup func(e etagTarget) string
	call  func(e etagTarget, id, etag string) error
	read  func(e etagTarget, id string) (etag, state string, err error)
	// after is the state the method leaves; deletes is set instead for one that removes the resource.
	after   string
	deletes bool
}

var etagMethods = []etagMethod{
	{name: "QualifyLead", setup: etagTarget.lead, read: etagTarget.readLead, after: "LEAD_STATUS_MARKETING_QUALIFIED",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.QualifyLead(e.ctx, &marketingv1.QualifyLeadRequest{Id: id, Etag: etag})
			return err
		}},
	{name: "DisqualifyLead", setup: etagTarget.lead, read: etagTarget.readLead, after: "LEAD_STATUS_DISQUALIFIED",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.DisqualifyLead(e.ctx, &marketingv1.DisqualifyLeadRequest{Id: id, Reason: "lost", Etag: etag})
			return err
		}},
	{name: "LaunchCampaign", setup: func(e etagTarget) string { return e.campaign(false) },
		read: etagTarget.readCampaign, after: "CAMPAIGN_STATUS_ACTIVE",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.LaunchCampaign(e.ctx, &marketingv1.LaunchCampaignRequest{Id: id, Etag: etag})
			return err
		}},
	{name: "PauseCampaign", setup: func(e etagTarget) string { return e.campaign(true) },
		read: etagTarget.readCampaign, after: "CAMPAIGN_STATUS_PAUSED",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.PauseCampaign(e.ctx, &marketingv1.PauseCampaignRequest{Id: id, Etag: etag})
			return err
		}},
	{name: "CompleteCampaign", setup: func(e etagTarget) string { return e.campaign(true) },
		read: etagTarget.readCampaign, after: "CAMPAIGN_STATUS_COMPLETED",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.CompleteCampaign(e.ctx, &marketingv1.CompleteCampaignRequest{Id: id, Etag: etag})
			return err
		}},
	{name: "MoveLifecycleStage", setup: etagTarget.customer, read: etagTarget.readLifecycle,
		after: "LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER at risk []",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.MoveLifecycleStage(e.ctx, &marketingv1.MoveLifecycleStageRequest{CustomerId: id,
				Stage: marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, Cause: "test", Etag: etag})
			return err
		}},
	{name: "SetCustomerAtRisk", setup: etagTarget.customer, read: etagTarget.readLifecycle,
		after: "LIFECYCLE_STAGE_PROSPECT at risk [nps]",
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.SetCustomerAtRisk(e.ctx, &marketingv1.SetCustomerAtRiskRequest{
				CustomerId: id, Reason: "nps", Etag: etag})
			return err
		}},
	{name: "ClearCustomerAtRisk", read: etagTarget.readLifecycle, after: "LIFECYCLE_STAGE_PROSPECT at risk []",
		setup: func(e etagTarget) string {
			customer := e.customer()
			req := &marketingv1.SetCustomerAtRiskRequest{CustomerId: customer, Reason: "nps"}
			_, err := e.client.SetCustomerAtRisk(e.ctx, req)
			e.must(err)
			return customer
		},
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.ClearCustomerAtRisk(e.ctx, &marketingv1.ClearCustomerAtRiskRequest{CustomerId: id, Etag: etag})
			return err
		}},
	{name: "DeleteSegment", read: etagTarget.readSegment, deletes: true,
		setup: func(e etagTarget) string {
			r, err := e.client.CreateSegment(e.ctx, &marketingv1.CreateSegmentRequest{Segment: &marketingv1.Segment{
				DisplayName: "etag", Rule: &marketingv1.SegmentRule{Tags: []string{"vip"}}}})
			e.must(err)
			return r.GetSegment().GetId()
		},
		call: func(e etagTarget, id, etag string) error {
			_, err := e.client.DeleteSegment(e.ctx, &marketingv1.DeleteSegmentRequest{Id: id, Etag: etag})
			return err
		}},
}

// isEtagMismatch reports whether err is a stale etag's answer: ABORTED with reason ETAG_MISMATCH.
func isEtagMismatch(err error) bool {
	reason, _ := errorInfo(err)
	return status.Code(err) == codes.Aborted && reason == "ETAG_MISMATCH"
}

// TestCustomMethodsCheckTheEtag: every custom method (and the segment delete) that takes its
// resource's etag refuses a stale one with ABORTED ETAG_MISMATCH, changing nothing (the same etag
// and state, no key, no event), and goes through with the current one. A stale etag is refused
// before the status machine: repeating the change with the etag it was made at, which the status
// machine would refuse (or find nothing to do for), is ETAG_MISMATCH too.
func TestCustomMethodsCheckTheEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	for _, m := range etagMethods {
		t.Run(m.name, func(t *testing.T) {
			e := etagTarget{client: client, ctx: ctx, t: t}
			id := m.setup(e)
			current, state, err := m.read(e, id)
			e.must(err)
			keys, events := sys.footprint(t, tenant)

			if err := m.call(e, id, "0"); !isEtagMismatch(err) {
				t.Fatalf("with a stale etag: %v, want ABORTED ETAG_MISMATCH", err)
			}
			if tag, now, err := m.read(e, id); err != nil || tag != current || now != state {
				t.Fatalf("after a stale etag: etag %q, %s, %v; want etag %q, %s", tag, now, err, current, state)
			}
			if k, ev := sys.footprint(t, tenant); k != keys || ev != events {
				t.Fatalf("a stale etag wrote: %d keys, %d events; before %d, %d", k, ev, keys, events)
			}

			e.must(m.call(e, id, current))
			tag, now, err := m.read(e, id)
			switch {
			case m.deletes:
				if status.Code(err) != codes.NotFound {
					t.Fatalf("after the delete with the current etag: %v, want NotFound", err)
				}
				return
			case err != nil || tag != etag.Next(current) || now != m.after:
				t.Fatalf("with the current etag: etag %q, %s, %v; want etag %q, %s", tag, now, err, etag.Next(current), m.after)
			}
			if err := m.call(e, id, current); !isEtagMismatch(err) {
				t.Fatalf("again with the etag it was made at: %v, want ABORTED ETAG_MISMATCH", err)
			}
			if again, _, _ := m.read(e, id); again != tag {
				t.Fatalf("a refused repeat changed the etag from %q to %q", tag, again)
			}
		})
	}
}

// TestConcurrentChangesOnOneEtag: two different changes sent at once with the resource's current
// etag (qualify and disqualify a lead, pause and complete a campaign, move a customer's stage and
// flag them at risk): exactly one goes through, the other is ABORTED ETAG_MISMATCH, and the
// resource is as the winner left it. Each round starts both calls together from a barrier.
func TestConcurrentChangesOnOneEtag(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	byName := map[string]etagMethod{}
	for _, m := range etagMethods {
		byName[m.name] = m
	}
	for _, pair := range [][2]string{
		{"QualifyLead", "DisqualifyLead"},
		{"PauseCampaign", "CompleteCampaign"},
		{"MoveLifecycleStage", "SetCustomerAtRisk"},
	} {
		t.Run(strings.Join(pair[:], "/"), func(t *testing.T) {
			e := etagTarget{client: client, ctx: ctx, t: t}
			first, second := byName[pair[0]], byName[pair[1]]
			for round := range 20 {
				id := first.setup(e)
				current, _, err := first.read(e, id)
				e.must(err)
				errs := servicetest.AtOnce(func() error { return first.call(e, id, current) },
					func() error { return second.call(e, id, current) })
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner < 0:
						winner = i
					case !isEtagMismatch(err):
						t.Fatalf("round %d: %s %v, %s %v; want one OK and one ABORTED ETAG_MISMATCH",
							round, pair[0], errs[0], pair[1], errs[1])
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: both refused: %v, %v", round, errs[0], errs[1])
				}
				want := []etagMethod{first, second}[winner].after
				if tag, got, err := first.read(e, id); err != nil || got != want || tag != etag.Next(current) {
					t.Fatalf("round %d: after the race: etag %q, %s, %v; want etag after %q, %s (%s won)",
						round, tag, got, err, current, want, pair[winner])
				}
			}
		})
	}
}
