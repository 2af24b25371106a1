package rpc_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/servicetest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// updateRace is a resource that two updates of different fields race on.
type updateRace struct {
	name string
	// setup makes a new resource and returns its id ("" for the tenant's settings, one for all rounds).
	setup func(e etagTarget) string
	// update sends update i (0 or 1) of round, with etag when it is set.
	update func(e etagTarget, id string, i, round int, etag string) error
	// read is the resource's etag and whether each of round's updates shows in it.
	read func(e etagTarget, id string, round int) (string, [2]bool, error)
}

func mask(path string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: []string{path}} }

var updateRaces = []updateRace{
	{name: "UpdateLead", setup: etagTarget.lead,
		update: func(e etagTarget, id string, i, round int, etag string) error {
			req := &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Etag: etag,
				Company: fmt.Sprint("Company ", round)}, UpdateMask: mask("company")}
			if i == 1 {
				req = &marketingv1.UpdateLeadRequest{Lead: &marketingv1.Lead{Id: id, Etag: etag,
					GivenName: fmt.Sprint("Ada ", round)}, UpdateMask: mask("given_name")}
			}
			_, err := e.client.UpdateLead(e.ctx, req)
			return err
		},
		read: func(e etagTarget, id string, round int) (string, [2]bool, error) {
			r, err := e.client.GetLead(e.ctx, &marketingv1.GetLeadRequest{Id: id})
			l := r.GetLead()
			return l.GetEtag(), [2]bool{l.GetCompany() == fmt.Sprint("Company ", round),
				l.GetGivenName() == fmt.Sprint("Ada ", round)}, err
		}},
	{name: "UpdateCampaign", setup: func(e etagTarget) string { return e.campaign(false) },
		update: func(e etagTarget, id string, i, round int, etag string) error {
			req := &marketingv1.UpdateCampaignRequest{Campaign: &marketingv1.Campaign{Id: id, Etag: etag,
				DisplayName: fmt.Sprint("Campaign ", round)}, UpdateMask: mask("display_name")}
			if i == 1 {
				req = &marketingv1.UpdateCampaignRequest{Campaign: &marketingv1.Campaign{Id: id, Etag: etag,
					Budget: &typev1.Money{CurrencyCode: "EUR", Units: int64(100 + round)}}, UpdateMask: mask("budget")}
			}
			_, err := e.client.UpdateCampaign(e.ctx, req)
			return err
		},
		read: func(e etagTarget, id string, round int) (string, [2]bool, error) {
			r, err := e.client.GetCampaign(e.ctx, &marketingv1.GetCampaignRequest{Id: id})
			c := r.GetCampaign()
			return c.GetEtag(), [2]bool{c.GetDisplayName() == fmt.Sprint("Campaign ", round),
				c.GetBudget().GetUnits() == int64(100+round)}, err
		}},
	{name: "UpdateScoringRules", setup: func(etagTarget) string { return "" },
		update: func(e etagTarget, _ string, i, round int, etag string) error {
			req := &marketingv1.UpdateScoringRulesRequest{ScoringRules: &marketingv1.ScoringRules{Etag: etag,
				CompanyPoints: int32(10 + round)}, UpdateMask: mask("company_points")}
			if i == 1 {
				req = &marketingv1.UpdateScoringRulesRequest{ScoringRules: &marketingv1.ScoringRules{Etag: etag,
					MqlThreshold: int32(100 + round)}, UpdateMask: mask("mql_threshold")}
			}
			_, err := e.client.UpdateScoringRules(e.ctx, req)
			return err
		},
		read: func(e etagTarget, _ string, round int) (string, [2]bool, error) {
			r, err := e.client.GetScoringRules(e.ctx, &marketingv1.GetScoringRulesRequest{})
			s := r.GetScoringRules()
			return s.GetEtag(), [2]bool{s.GetCompanyPoints() == int32(10+round), s.GetMqlThreshold() == int32(100+round)}, err
		}},
	{name: "UpdateLoyaltyProgram", setup: func(etagTarget) string { return "" },
		update: func(e etagTarget, _ string, i, round int, etag string) error {
			req := &marketingv1.UpdateLoyaltyProgramRequest{LoyaltyProgram: &marketingv1.LoyaltyProgram{Etag: etag,
				PointsPerUnit: int64(2 + round)}, UpdateMask: mask("points_per_unit")}
			if i == 1 {
				req = &marketingv1.UpdateLoyaltyProgramRequest{LoyaltyProgram: &marketingv1.LoyaltyProgram{Etag: etag,
					SilverPoints: int64(1001 + round)}, UpdateMask: mask("silver_points")}
			}
			_, err := e.client.UpdateLoyaltyProgram(e.ctx, req)
			return err
		},
		read: func(e etagTarget, _ string, round int) (string, [2]bool, error) {
			r, err := e.client.GetLoyaltyProgram(e.ctx, &marketingv1.GetLoyaltyProgramRequest{})
			p := r.GetLoyaltyProgram()
			return p.GetEtag(), [2]bool{p.GetPointsPerUnit() == int64(2+round), p.GetSilverPoints() == int64(1001+round)}, err
		}},
	// The settings have one field: both updates set it, and it ends as one of them.
	{name: "UpdateLifecycleSettings", setup: func(etagTarget) string { return "" },
		update: func(e etagTarget, _ string, i, round int, etag string) error {
			_, err := e.client.UpdateLifecycleSettings(e.ctx, &marketingv1.UpdateLifecycleSettingsRequest{
				Settings: &marketingv1.LifecycleSettings{Etag: etag, ChurnWindowDays: int32(100*(i+1) + round)}})
			return err
		},
		read: func(e etagTarget, _ string, round int) (string, [2]bool, error) {
			r, err := e.client.GetLifecycleSettings(e.ctx, &marketingv1.GetLifecycleSettingsRequest{})
			days := r.GetSettings().GetChurnWindowDays()
			one := days == int32(100+round) || days == int32(200+round)
			return r.GetSettings().GetEtag(), [2]bool{one, one}, err
		}},
}

// twice runs call(0) and call(1) at once (servicetest.AtOnce).
func twice(call func(i int) error) []error {
	return servicetest.AtOnce(func() error { return call(0) }, func() error { return call(1) })
}

// TestUpdatesWithoutAnEtagDoNotRace: two updates of different fields sent at once without an
// etag both apply, one after the other (the write that lost the race reads again), where the
// loser answered ETAG_MISMATCH for an etag nobody sent: the resource ends with both changes, its
// etag two steps on. With an etag the race still has one winner and one ETAG_MISMATCH, and a
// stale etag is refused, changing nothing.
func TestUpdatesWithoutAnEtagDoNotRace(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	for _, r := range updateRaces {
		t.Run(r.name, func(t *testing.T) {
			e := etagTarget{client: client, ctx: ctx, t: t}
			for round := range 10 {
				id := r.setup(e)
				before, _, err := r.read(e, id, round)
				e.must(err)
				errs := twice(func(i int) error { return r.update(e, id, i, round, "") })
				tag, applied, err := r.read(e, id, round)
				if errs[0] != nil || errs[1] != nil || err != nil || !applied[0] || !applied[1] ||
					tag != etag.Next(etag.Next(before)) {
					t.Fatalf("round %d without an etag: %v, %v; then etag %q (%v), applied %v; want both, etag %q",
						round, errs[0], errs[1], tag, err, applied, etag.Next(etag.Next(before)))
				}

				errs = twice(func(i int) error { return r.update(e, id, i, round+100, tag) })
				if (errs[0] == nil) == (errs[1] == nil) || !isEtagMismatch(errs[0]) && !isEtagMismatch(errs[1]) {
					t.Fatalf("round %d with etag %q: %v, %v; want one OK and one ETAG_MISMATCH", round, tag, errs[0], errs[1])
				}
				after, _, err := r.read(e, id, round)
				e.must(err)
				if after != etag.Next(tag) {
					t.Fatalf("round %d: etag %q after the race on etag %q, want %q", round, after, tag, etag.Next(tag))
				}
				if err := r.update(e, id, 0, round+200, tag); !isEtagMismatch(err) {
					t.Fatalf("round %d with the stale etag %q: %v, want ABORTED ETAG_MISMATCH", round, tag, err)
				}
				if again, _, _ := r.read(e, id, round); again != after {
					t.Fatalf("round %d: a stale etag changed the etag from %q to %q", round, after, again)
				}
			}
		})
	}
}

// TestEraseWithoutAnEtagDoesNotRace: a lead's erasure and an update of it sent at once without an
// etag: the erasure always goes through (it reads again when the update wrote first), and the
// update either went first or finds no lead.
func TestEraseWithoutAnEtagDoesNotRace(t *testing.T) {
	sys := startSystem(t)
	_, key := sys.NewKey(t, "", "marketing.read", "marketing.write")
	client, ctx := sys.marketing(key)
	e := etagTarget{client: client, ctx: ctx, t: t}
	for round := range 10 {
		id := e.lead()
		errs := twice(func(i int) error {
			if i == 0 {
				_, err := client.DeleteLead(ctx, &marketingv1.DeleteLeadRequest{Id: id})
				return err
			}
			return updateRaces[0].update(e, id, 0, round, "")
		})
		if errs[0] != nil || errs[1] != nil && status.Code(errs[1]) != codes.NotFound {
			t.Fatalf("round %d: erase %v, update %v; want the erase OK and the update OK or NOT_FOUND", round, errs[0], errs[1])
		}
		if _, err := client.GetLead(ctx, &marketingv1.GetLeadRequest{Id: id}); status.Code(err) != codes.NotFound {
			t.Fatalf("round %d: the erased lead reads %v, want NOT_FOUND", round, err)
		}
	}
}
