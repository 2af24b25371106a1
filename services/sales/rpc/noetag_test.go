package rpc_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/crmcycle/crm/pkg/servicetest"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// mask names the fields of an update.
func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

// TestUpdatesWithoutAnEtagDoNotRace: two updates of different fields of one account, contact,
// deal or pipeline sent at once without an etag both apply, one after the other (a lost race
// reads the record again), where the loser answered ETAG_MISMATCH for an etag nobody sent: the
// record ends with both changes, its etag two steps on. A contact's new e-mail is in the registry
// for its customer. A stale etag is still ETAG_MISMATCH and changes nothing.
func TestUpdatesWithoutAnEtagDoNotRace(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	c, ctx := sys.sales(key)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	account := func(round int) string {
		r, err := c.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{
			DisplayName: "Race", Domain: fmt.Sprintf("race%d.example", round)}})
		must(err)
		return r.GetAccount().GetId()
	}
	stages := func(extra ...*salesv1.PipelineStage) []*salesv1.PipelineStage {
		return append([]*salesv1.PipelineStage{
			{Id: "OPEN", Probability: 20, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_PIPELINE,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_OPEN},
			{Id: "WON", Probability: 100, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_CLOSED,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_WON},
			{Id: "LOST", ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_OMITTED,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_LOST},
		}, extra...)
	}
	late := &salesv1.PipelineStage{Id: "LATE", Probability: 80, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT,
		Outcome: salesv1.StageOutcome_STAGE_OUTCOME_OPEN}
	for _, tc := range []struct {
		name   string
		create func(round int) string
		// one and other change different fields; applied tells whether both did.
		one, other func(round int, id, etag string) error
		get        func(id string) proto.Message
		applied    func(round int, m proto.Message) bool
	}{{
		name:   "account",
		create: account,
		one: func(_ int, id, etag string) error {
			_, err := c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: id,
				DisplayName: "Renamed", Etag: etag}, UpdateMask: mask("display_name")})
			return err
		},
		other: func(_ int, id, etag string) error {
			_, err := c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: id,
				Industry: "Shipping", Etag: etag}, UpdateMask: mask("industry")})
			return err
		},
		get: func(id string) proto.Message {
			r, err := c.GetAccount(ctx, &salesv1.GetAccountRequest{Id: id})
			must(err)
			return r.GetAccount()
		},
		applied: func(_ int, m proto.Message) bool {
			a := m.(*salesv1.Account)
			return a.GetDisplayName() == "Renamed" && a.GetIndustry() == "Shipping"
		},
	}, {
		name: "contact",
		create: func(round int) string {
			r, err := c.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{
				Email: fmt.Sprintf("race%d@example.com", round)}})
			must(err)
			return r.GetContact().GetId()
		},
		one: func(round int, id, etag string) error { // the e-mail, attached in the registry first
			_, err := c.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: id,
				Email: fmt.Sprintf("moved%d@example.com", round), Etag: etag}, UpdateMask: mask("email")})
			return err
		},
		other: func(_ int, id, etag string) error {
			_, err := c.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: id,
				GivenName: "Ada", Etag: etag}, UpdateMask: mask("given_name")})
			return err
		},
		get: func(id string) proto.Message {
			r, err := c.GetContact(ctx, &salesv1.GetContactRequest{Id: id})
			must(err)
			return r.GetContact()
		},
		applied: func(round int, m proto.Message) bool {
			con, email := m.(*salesv1.Contact), fmt.Sprintf("moved%d@example.com", round)
			return con.GetEmail() == email && con.GetGivenName() == "Ada" &&
				sys.leads.customerOf(tenant, email) == con.GetCustomerId()
		},
	}, {
		name: "opportunity",
		create: func(round int) string {
			r, err := c.CreateOpportunity(ctx, &salesv1.CreateOpportunityRequest{Opportunity: &salesv1.Opportunity{
				DisplayName: "Race deal", AccountId: account(100 + round), CurrencyCode: "EUR"}})
			must(err)
			return r.GetOpportunity().GetId()
		},
		one: func(_ int, id, etag string) error {
			_, err := c.UpdateOpportunity(ctx, &salesv1.UpdateOpportunityRequest{Opportunity: &salesv1.Opportunity{Id: id,
				DisplayName: "Renamed deal", Etag: etag}, UpdateMask: mask("display_name")})
			return err
		},
		other: func(_ int, id, etag string) error {
			_, err := c.UpdateOpportunity(ctx, &salesv1.UpdateOpportunityRequest{Opportunity: &salesv1.Opportunity{Id: id,
				CloseDate: "2031-03-01", Etag: etag}, UpdateMask: mask("close_date")})
			return err
		},
		get: func(id string) proto.Message {
			r, err := c.GetOpportunity(ctx, &salesv1.GetOpportunityRequest{Id: id})
			must(err)
			return r.GetOpportunity()
		},
		applied: func(_ int, m proto.Message) bool {
			o := m.(*salesv1.Opportunity)
			return o.GetDisplayName() == "Renamed deal" && o.GetCloseDate() == "2031-03-01"
		},
	}, {
		name: "pipeline",
		create: func(int) string {
			r, err := c.CreatePipeline(ctx, &salesv1.CreatePipelineRequest{Pipeline: &salesv1.Pipeline{
				DisplayName: "Race", Stages: stages()}})
			must(err)
			return r.GetPipeline().GetId()
		},
		one: func(_ int, id, etag string) error {
			_, err := c.UpdatePipeline(ctx, &salesv1.UpdatePipelineRequest{Pipeline: &salesv1.Pipeline{Id: id,
				DisplayName: "Renamed", Etag: etag}, UpdateMask: mask("display_name")})
			return err
		},
		other: func(_ int, id, etag string) error {
			_, err := c.UpdatePipeline(ctx, &salesv1.UpdatePipelineRequest{Pipeline: &salesv1.Pipeline{Id: id,
				Stages: stages(late), Etag: etag}, UpdateMask: mask("stages")})
			return err
		},
		get: func(id string) proto.Message {
			r, err := c.GetPipeline(ctx, &salesv1.GetPipelineRequest{Id: id})
			must(err)
			return r.GetPipeline()
		},
		applied: func(_ int, m proto.Message) bool {
			p := m.(*salesv1.Pipeline)
			return p.GetDisplayName() == "Renamed" && len(p.GetStages()) == 4
		},
	}} {
		for round := range 10 {
			id := tc.create(round)
			errs := servicetest.AtOnce(func() error { return tc.one(round, id, "") }, func() error { return tc.other(round, id, "") })
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("%s, round %d: updates without an etag answered %v and %v", tc.name, round, errs[0], errs[1])
			}
			got := tc.get(id)
			if !tc.applied(round, got) || etagOf(got) != "3" {
				t.Fatalf("%s, round %d: %v, want both changes at etag 3", tc.name, round, got)
			}
			wantEtagMismatch(t, tc.name+": stale etag", tc.one(round, id, "1"))
			if after := tc.get(id); !proto.Equal(after, got) {
				t.Fatalf("%s, round %d: a stale etag changed %v to %v", tc.name, round, got, after)
			}
		}
	}
}
