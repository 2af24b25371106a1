package rpc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// wantEtagMismatch fails unless err is ABORTED with the reason ETAG_MISMATCH.
func wantEtagMismatch(t *testing.T, what string, err error) {
	t.Helper()
	if reason, _ := errorInfo(err); status.Code(err) != codes.Aborted || reason != "ETAG_MISMATCH" {
		t.Fatalf("%s: %v (reason %q), want ABORTED ETAG_MISMATCH", what, err, reason)
	}
}

// etagDeal opens a deal with a line item for a new contact and renames it once, so that its
// etag "1" is stale; it returns the deal as it is now.
func etagDeal(t *testing.T, c salesv1.SalesServiceClient, ctx context.Context, product, pipeline string) *salesv1.Opportunity {
	t.Helper()
	con, err := c.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{
		Email: fmt.Sprintf("etag%d@example.com", etagContacts.Add(1))}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.CreateOpportunity(ctx, &salesv1.CreateOpportunityRequest{Opportunity: &salesv1.Opportunity{
		DisplayName: "Etag deal", ContactId: con.GetContact().GetId(), CurrencyCode: "EUR", PipelineId: pipeline}})
	if err != nil {
		t.Fatal(err)
	}
	id := o.GetOpportunity().GetId()
	if _, err := c.AddLineItem(ctx, &salesv1.AddLineItemRequest{OpportunityId: id,
		LineItem: &salesv1.OrderLine{ProductId: product, Quantity: 1}}); err != nil {
		t.Fatal(err)
	}
	u, err := c.UpdateOpportunity(ctx, &salesv1.UpdateOpportunityRequest{Opportunity: &salesv1.Opportunity{Id: id,
		DisplayName: "Etag deal, renamed"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	if err != nil {
		t.Fatal(err)
	}
	return u.GetOpportunity()
}

// etagContacts numbers the contacts of etagDeal, whose e-mails must differ.
var etagContacts atomic.Int64

// etagOf is a resource's etag.
func etagOf(m proto.Message) string { return m.(interface{ GetEtag() string }).GetEtag() }

// TestCustomMethodsCheckTheEtag: each custom method of sales given a stale etag is ABORTED
// ETAG_MISMATCH and changes nothing, even where its state check would refuse it too; with the
// current etag it goes through, and the state check still refuses what it should.
func TestCustomMethodsCheckTheEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	c, ctx := sys.sales(key)
	product := sys.catalog.add(tenant, "ETAG", "Etag", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)
	getDeal := func(id string) (proto.Message, error) {
		r, err := c.GetOpportunity(ctx, &salesv1.GetOpportunityRequest{Id: id})
		return r.GetOpportunity(), err
	}
	newDeal := func(t *testing.T) (string, string) { return etagDeal(t, c, ctx, product, "").GetId(), "1" }
	move := func(stage string) func(id, etag string) error {
		return func(id, etag string) error {
			_, err := c.MoveOpportunityStage(ctx, &salesv1.MoveOpportunityStageRequest{Id: id, Stage: stage, Etag: etag})
			return err
		}
	}
	win := func(id, etag string) error {
		_, err := c.WinOpportunity(ctx, &salesv1.WinOpportunityRequest{Id: id, Etag: etag})
		return err
	}
	lose := func(id, etag string) error {
		_, err := c.LoseOpportunity(ctx, &salesv1.LoseOpportunityRequest{Id: id, Reason: "budget", Etag: etag})
		return err
	}
	complete := func(id, etag string) error {
		_, err := c.CompleteActivity(ctx, &salesv1.CompleteActivityRequest{Id: id, Etag: etag})
		return err
	}
	for _, tc := range []struct {
		method string
		// create makes a resource the call succeeds on; it returns its id and an etag it no longer has.
		create func(t *testing.T) (id, stale string)
		get    func(id string) (proto.Message, error)
		call   func(id, etag string) error
		// refuse is a call the state machine refuses (after call succeeded), with refusal's reason.
		refuse  func(id, etag string) error
		refusal string
		event   string
	}{
		{"MoveOpportunityStage", newDeal, getDeal, move("PROPOSAL"), move("CLOSED_WON"), "CLOSED_STAGE",
			"sales.opportunity.stage_changed"},
		{"WinOpportunity", newDeal, getDeal, win, win, "OPPORTUNITY_CLOSED", "sales.opportunity.won"},
		{"LoseOpportunity", newDeal, getDeal, lose, lose, "OPPORTUNITY_CLOSED", "sales.opportunity.lost"},
		{"CompleteActivity", func(t *testing.T) (string, string) {
			a, err := c.CreateActivity(ctx, &salesv1.CreateActivityRequest{Activity: &salesv1.Activity{
				Type: salesv1.ActivityType_ACTIVITY_TYPE_TASK, Subject: "Etag task", OwnerId: "ada",
				OpportunityId: etagDeal(t, c, ctx, product, "").GetId(), DueTime: timestamppb.Now()}})
			if err != nil {
				t.Fatal(err)
			}
			return a.GetActivity().GetId(), "0" // a task changes only when completed: no etag before "1"
		}, func(id string) (proto.Message, error) {
			r, err := c.GetActivity(ctx, &salesv1.GetActivityRequest{Id: id})
			return r.GetActivity(), err
		}, complete, complete, "NOT_AN_OPEN_TASK", "sales.activity.completed"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			id, stale := tc.create(t)
			unchanged := func(what string, want proto.Message) {
				t.Helper()
				got, err := tc.get(id)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("%s changed the resource:\n%v\nwas\n%v", what, got, want)
				}
			}
			before, err := tc.get(id)
			if err != nil {
				t.Fatal(err)
			}
			wantEtagMismatch(t, "stale etag", tc.call(id, stale))
			unchanged("a stale etag", before)
			if n := len(sys.events(t, tenant, tc.event)); n != 0 {
				t.Fatalf("%d %s events after a stale etag, want none", n, tc.event)
			}

			current := etagOf(before)
			if err := tc.call(id, current); err != nil {
				t.Fatalf("current etag %q: %v", current, err)
			}
			after, err := tc.get(id)
			if err != nil {
				t.Fatal(err)
			}
			if etagOf(after) == current {
				t.Fatalf("etag still %q after the change", current)
			}

			// The etag is checked before the state: a stale one is ETAG_MISMATCH even where the
			// call is refused anyway.
			wantEtagMismatch(t, "refused call with a stale etag", tc.refuse(id, current))
			unchanged("a refused call with a stale etag", after)
			err = tc.refuse(id, etagOf(after))
			if reason, _ := errorInfo(err); reason != tc.refusal {
				t.Fatalf("refused call with the current etag: %v (reason %q), want %s", err, reason, tc.refusal)
			}
			unchanged("a refused call", after)
			if n := len(sys.events(t, tenant, tc.event)); n != 1 {
				t.Fatalf("%d %s events, want 1", n, tc.event)
			}
		})
	}
}

// TestWinAndLoseOnOneEtag: a win and a loss of one deal sent at once with its etag: one goes
// through, the other is ABORTED ETAG_MISMATCH (not OPPORTUNITY_CLOSED: it was sent for the open
// deal), and the deal ends as the one that went through left it.
func TestWinAndLoseOnOneEtag(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	c, ctx := sys.sales(key)
	product := sys.catalog.add(tenant, "ETAG-RACE", "Etag race", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)
	const rounds = 20
	for round := range rounds {
		deal := etagDeal(t, c, ctx, product, "")
		var results [2]*salesv1.Opportunity
		errs := servicetest.AtOnce(func() error {
			r, err := c.WinOpportunity(ctx, &salesv1.WinOpportunityRequest{Id: deal.GetId(), Etag: deal.GetEtag()})
			results[0] = r.GetOpportunity()
			return err
		}, func() error {
			r, err := c.LoseOpportunity(ctx, &salesv1.LoseOpportunityRequest{Id: deal.GetId(), Reason: "race", Etag: deal.GetEtag()})
			results[1] = r.GetOpportunity()
			return err
		})
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if winner < 0 || errs[1-winner] == nil {
			t.Fatalf("round %d: win, lose = %v, %v: want exactly one to succeed", round, errs[0], errs[1])
		}
		wantEtagMismatch(t, fmt.Sprintf("round %d: the other call", round), errs[1-winner])
		got, err := c.GetOpportunity(ctx, &salesv1.GetOpportunityRequest{Id: deal.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetOpportunity(), results[winner]) {
			t.Fatalf("round %d: deal is %v, want the winner's %v", round, got.GetOpportunity(), results[winner])
		}
	}
	won, lost := len(sys.events(t, tenant, "sales.opportunity.won")), len(sys.events(t, tenant, "sales.opportunity.lost"))
	if won+lost != rounds || len(sys.events(t, tenant, "sales.order.placed")) != won {
		t.Fatalf("%d won, %d lost events, %d orders for %d deals", won, lost, len(sys.events(t, tenant, "sales.order.placed")), rounds)
	}
}

// pipelineEditBefore edits a pipeline once, just before the first write of a resource whose key
// has id: the write then finds the pipeline it pins changed.
type pipelineEditBefore struct {
	id    string
	armed atomic.Bool
	edit  func() error
	done  chan error // the edit's result
}

func (h *pipelineEditBefore) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pipelineEditBefore) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); (n == "evalsha" || n == "eval") && slices.ContainsFunc(cmd.Args(), func(a any) bool {
			s, ok := a.(string)
			return ok && strings.Contains(s, h.id)
		}) && h.armed.CompareAndSwap(true, false) {
			h.done <- h.edit()
		}
		return next(ctx, cmd)
	}
}
func (h *pipelineEditBefore) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestEtagSurvivesAPipelineEdit: a move with the deal's current etag whose write finds the
// pipeline edited meanwhile is retried and goes through: the deal did not change, so its etag
// is no mismatch.
func TestEtagSurvivesAPipelineEdit(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	c, ctx := sys.sales(key)
	product := sys.catalog.add(tenant, "ETAG-PIPE", "Etag pipe", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)
	p, err := c.CreatePipeline(ctx, &salesv1.CreatePipelineRequest{Pipeline: &salesv1.Pipeline{DisplayName: "Etag",
		Stages: []*salesv1.PipelineStage{
			{Id: "OPEN", Probability: 20, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_PIPELINE,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_OPEN},
			{Id: "LATE", Probability: 80, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_OPEN},
			{Id: "WON", Probability: 100, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_CLOSED,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_WON},
			{Id: "LOST", ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_OMITTED,
				Outcome: salesv1.StageOutcome_STAGE_OUTCOME_LOST},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	deal := etagDeal(t, c, ctx, product, p.GetPipeline().GetId())
	hook := &pipelineEditBefore{id: deal.GetId(), done: make(chan error, 1), edit: func() error {
		_, err := c.UpdatePipeline(ctx, &salesv1.UpdatePipelineRequest{Pipeline: &salesv1.Pipeline{
			Id: p.GetPipeline().GetId(), DisplayName: "Etag, renamed"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
		return err
	}}
	sys.Suite.Redis.AddHook(hook)
	hook.armed.Store(true)

	moved, err := c.MoveOpportunityStage(ctx, &salesv1.MoveOpportunityStageRequest{Id: deal.GetId(), Stage: "LATE", Etag: deal.GetEtag()})
	select {
	case err := <-hook.done:
		if err != nil {
			t.Fatalf("pipeline edit: %v", err)
		}
	default:
		t.Fatal("the pipeline edit did not run before the move's write")
	}
	if err != nil {
		t.Fatalf("move with the current etag across a pipeline edit: %v, want it to go through", err)
	}
	if moved.GetOpportunity().GetStage() != "LATE" {
		t.Fatalf("deal in %q after the move, want LATE", moved.GetOpportunity().GetStage())
	}
}
