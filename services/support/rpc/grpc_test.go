package rpc_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// TestSupportOverGRPC calls every support RPC over gRPC, through the real interceptors: the happy
// path and each error code it can answer.
func TestSupportOverGRPC(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", supportScopes...)
	_, readOnly := sys.NewKey(t, tenant, "support.read")
	c, ctx := sys.support(key)
	_, roCtx := sys.support(readOnly)
	_, anonCtx := sys.support("")
	unknown := "01a20b45-2a28-7f41-b702-1121b1b3b663"

	newTicket := func() *supportv1.Ticket {
		t.Helper()
		r, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{
			CustomerId: supportCustomer, Subject: "Export fails", Priority: supportv1.TicketPriority_TICKET_PRIORITY_HIGH,
			Channel: supportv1.TicketChannel_TICKET_CHANNEL_CHAT}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetTicket()
	}
	tk := newTicket()
	closed := newTicket()
	for _, step := range []func() error{
		func() error {
			_, err := c.OpenTicket(ctx, &supportv1.OpenTicketRequest{Id: closed.GetId()})
			return err
		},
		func() error {
			_, err := c.SolveTicket(ctx, &supportv1.SolveTicketRequest{Id: closed.GetId()})
			return err
		},
		func() error {
			_, err := c.CloseTicket(ctx, &supportv1.CloseTicketRequest{Id: closed.GetId()})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	id := tk.GetId()
	ticketCall := func(f func(context.Context, string) error) func(context.Context) error {
		return func(ctx context.Context) error { return f(ctx, id) }
	}
	move := func(verb string) func(context.Context, string) error {
		return func(ctx context.Context, id string) error {
			var err error
			switch verb {
			case "open":
				_, err = c.OpenTicket(ctx, &supportv1.OpenTicketRequest{Id: id})
			case "pend":
				_, err = c.PendTicket(ctx, &supportv1.PendTicketRequest{Id: id})
			case "hold":
				_, err = c.HoldTicket(ctx, &supportv1.HoldTicketRequest{Id: id})
			case "solve":
				_, err = c.SolveTicket(ctx, &supportv1.SolveTicketRequest{Id: id})
			case "reopen":
				_, err = c.ReopenTicket(ctx, &supportv1.ReopenTicketRequest{Id: id})
			case "close":
				_, err = c.CloseTicket(ctx, &supportv1.CloseTicketRequest{Id: id})
			}
			return err
		}
	}
	comment := func(ctx context.Context, id string) error {
		_, err := c.AddComment(ctx, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{Body: "hello"}})
		return err
	}
	rate := func(score int32) func(context.Context, string) error {
		return func(ctx context.Context, id string) error {
			_, err := c.RateTicket(ctx, &supportv1.RateTicketRequest{Id: id, Score: score})
			return err
		}
	}
	policy := func(etag string, first, resolution time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.UpdateSlaPolicy(ctx, &supportv1.UpdateSlaPolicyRequest{SlaPolicy: &supportv1.SlaPolicy{
				Priority: supportv1.TicketPriority_TICKET_PRIORITY_HIGH, FirstResponseTarget: durationpb.New(first),
				ResolutionTarget: durationpb.New(resolution), Etag: etag}})
			return err
		}
	}
	settings := func(etag string, days int32) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.UpdateSupportSettings(ctx, &supportv1.UpdateSupportSettingsRequest{Settings: &supportv1.SupportSettings{AutoCloseDays: days, Etag: etag}})
			return err
		}
	}
	nps := func(score int32) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.RecordNpsResponse(ctx, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{CustomerId: supportCustomer, Score: score}})
			return err
		}
	}
	on := func(id string, f func(context.Context, string) error) func(context.Context) error {
		return func(ctx context.Context) error { return f(ctx, id) }
	}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		call func(context.Context) error
		want codes.Code
	}{
		{"create without key", anonCtx, func(ctx context.Context) error {
			_, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "x"}})
			return err
		}, codes.Unauthenticated},
		{"create with a read-only key", roCtx, func(ctx context.Context) error {
			_, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "x"}})
			return err
		}, codes.PermissionDenied},
		{"create with a bad customer", ctx, func(ctx context.Context) error {
			_, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: "x", Subject: "x"}})
			return err
		}, codes.InvalidArgument},
		{"create with an undefined channel", ctx, func(ctx context.Context) error {
			_, err := c.CreateTicket(ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "x", Channel: 9}})
			return err
		}, codes.InvalidArgument},
		{"get", ctx, ticketCall(func(ctx context.Context, id string) error {
			_, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
			return err
		}), codes.OK},
		{"get read-only", roCtx, ticketCall(func(ctx context.Context, id string) error {
			_, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
			return err
		}), codes.OK},
		{"get unknown", ctx, on(unknown, func(ctx context.Context, id string) error {
			_, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
			return err
		}), codes.NotFound},
		{"get bad id", ctx, on("x", func(ctx context.Context, id string) error {
			_, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
			return err
		}), codes.InvalidArgument},
		{"list", ctx, func(ctx context.Context) error {
			_, err := c.ListTickets(ctx, &supportv1.ListTicketsRequest{Filter: "priority = TICKET_PRIORITY_HIGH"})
			return err
		}, codes.OK},
		{"list bad filter", ctx, func(ctx context.Context) error {
			_, err := c.ListTickets(ctx, &supportv1.ListTicketsRequest{Filter: "status != TICKET_STATUS_NEW"})
			return err
		}, codes.InvalidArgument},
		{"list forged token", ctx, func(ctx context.Context) error {
			_, err := c.ListTickets(ctx, &supportv1.ListTicketsRequest{PageToken: "bm9wZQ"})
			return err
		}, codes.InvalidArgument},
		{"update", ctx, func(ctx context.Context) error {
			_, err := c.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: id, Tags: []string{"export"}, Etag: "1"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tags"}}})
			return err
		}, codes.OK},
		{"update stale", ctx, func(ctx context.Context) error {
			_, err := c.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: id, Subject: "y", Etag: "1"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"subject"}}})
			return err
		}, codes.Aborted},
		{"update unknown", ctx, func(ctx context.Context) error {
			_, err := c.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: unknown, Subject: "y"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"subject"}}})
			return err
		}, codes.NotFound},
		{"update closed", ctx, func(ctx context.Context) error {
			_, err := c.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: closed.GetId(), Subject: "y"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"subject"}}})
			return err
		}, codes.FailedPrecondition},
		{"pend NEW", ctx, ticketCall(move("pend")), codes.FailedPrecondition},
		{"assign", ctx, ticketCall(func(ctx context.Context, id string) error {
			_, err := c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: "agent-1"})
			return err
		}), codes.OK},
		{"assign closed", ctx, on(closed.GetId(), func(ctx context.Context, id string) error {
			_, err := c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: "agent-1"})
			return err
		}), codes.FailedPrecondition},
		{"assign unknown", ctx, on(unknown, func(ctx context.Context, id string) error {
			_, err := c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: "agent-1"})
			return err
		}), codes.NotFound},
		{"comment", ctx, ticketCall(comment), codes.OK},
		{"comment closed", ctx, on(closed.GetId(), comment), codes.FailedPrecondition},
		{"comment unknown", ctx, on(unknown, comment), codes.NotFound},
		{"comment empty", ctx, func(ctx context.Context) error {
			_, err := c.AddComment(ctx, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{}})
			return err
		}, codes.InvalidArgument},
		{"list comments", ctx, ticketCall(func(ctx context.Context, id string) error {
			r, err := c.ListComments(ctx, &supportv1.ListCommentsRequest{TicketId: id})
			if err == nil && len(r.GetComments()) != 1 {
				t.Errorf("comments = %v, want 1", r.GetComments())
			}
			return err
		}), codes.OK},
		{"list comments unknown", ctx, on(unknown, func(ctx context.Context, id string) error {
			_, err := c.ListComments(ctx, &supportv1.ListCommentsRequest{TicketId: id})
			return err
		}), codes.NotFound},
		{"open OPEN", ctx, ticketCall(move("open")), codes.FailedPrecondition},
		{"pend", ctx, ticketCall(move("pend")), codes.OK},
		{"hold PENDING", ctx, ticketCall(move("hold")), codes.FailedPrecondition},
		{"open", ctx, ticketCall(move("open")), codes.OK},
		{"hold", ctx, ticketCall(move("hold")), codes.OK},
		{"solve ON_HOLD", ctx, ticketCall(move("solve")), codes.FailedPrecondition},
		{"open again", ctx, ticketCall(move("open")), codes.OK},
		{"reopen OPEN", ctx, ticketCall(move("reopen")), codes.FailedPrecondition},
		{"close OPEN", ctx, ticketCall(move("close")), codes.FailedPrecondition},
		{"rate OPEN", ctx, ticketCall(rate(5)), codes.FailedPrecondition},
		{"solve", ctx, ticketCall(move("solve")), codes.OK},
		{"rate 0", ctx, ticketCall(rate(0)), codes.InvalidArgument},
		{"rate", ctx, ticketCall(rate(5)), codes.OK},
		{"rate twice", ctx, ticketCall(rate(4)), codes.FailedPrecondition},
		{"rate unknown", ctx, on(unknown, rate(4)), codes.NotFound},
		{"reopen", ctx, ticketCall(move("reopen")), codes.OK},
		{"reopen CLOSED", ctx, on(closed.GetId(), move("reopen")), codes.FailedPrecondition},
		{"solve unknown", ctx, on(unknown, move("solve")), codes.NotFound},
		{"sweep", ctx, func(ctx context.Context) error {
			_, err := c.SweepTickets(ctx, &supportv1.SweepTicketsRequest{})
			return err
		}, codes.OK},
		{"sweep read-only", roCtx, func(ctx context.Context) error {
			_, err := c.SweepTickets(ctx, &supportv1.SweepTicketsRequest{})
			return err
		}, codes.PermissionDenied},
		{"list policies", roCtx, func(ctx context.Context) error {
			r, err := c.ListSlaPolicies(ctx, &supportv1.ListSlaPoliciesRequest{})
			if err == nil && len(r.GetSlaPolicies()) != 4 {
				t.Errorf("policies = %v, want 4", r.GetSlaPolicies())
			}
			return err
		}, codes.OK},
		{"update policy", ctx, policy("0", 2*time.Hour, 12*time.Hour), codes.OK},
		{"update policy stale", ctx, policy("0", 2*time.Hour, 12*time.Hour), codes.Aborted},
		{"update policy inverted", ctx, policy("", 12*time.Hour, 2*time.Hour), codes.InvalidArgument},
		{"update policy too short", ctx, policy("", time.Second, 2*time.Hour), codes.InvalidArgument},
		{"update policy without priority", ctx, func(ctx context.Context) error {
			_, err := c.UpdateSlaPolicy(ctx, &supportv1.UpdateSlaPolicyRequest{SlaPolicy: &supportv1.SlaPolicy{FirstResponseTarget: durationpb.New(time.Hour)}})
			return err
		}, codes.InvalidArgument},
		{"get settings", roCtx, func(ctx context.Context) error {
			r, err := c.GetSupportSettings(ctx, &supportv1.GetSupportSettingsRequest{})
			if err == nil && r.GetSettings().GetAutoCloseDays() != 4 {
				t.Errorf("settings = %v, want the default 4 days", r.GetSettings())
			}
			return err
		}, codes.OK},
		{"update settings", ctx, settings("0", 7), codes.OK},
		{"update settings stale", ctx, settings("0", 7), codes.Aborted},
		{"update settings out of range", ctx, settings("", 400), codes.InvalidArgument},
		{"nps", ctx, nps(10), codes.OK},
		{"nps out of range", ctx, nps(11), codes.InvalidArgument},
		{"nps read-only", roCtx, nps(3), codes.PermissionDenied},
		{"stats", roCtx, func(ctx context.Context) error {
			_, err := c.GetSupportStats(ctx, &supportv1.GetSupportStatsRequest{})
			return err
		}, codes.OK},
	} {
		if err := tc.call(tc.ctx); status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// The changes above are what the ticket and the statistics say.
	got, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if g := got.GetTicket(); g.GetStatus() != supportv1.TicketStatus_TICKET_STATUS_OPEN || g.GetAssigneeId() != "agent-1" ||
		g.GetCsat().GetScore() != 5 || len(g.GetTags()) != 1 || g.GetFirstResponse().GetMetTime() == nil {
		t.Fatalf("ticket = %v", g)
	}
	st, err := c.GetSupportStats(ctx, &supportv1.GetSupportStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.GetStats(); s.GetTicketsCreated() != 2 || s.GetBacklogTotal() != 1 || s.GetCsatCount() != 1 || s.GetCsatAverage() != 5 ||
		s.GetNpsPromoters() != 1 || s.GetNps() != 100 || s.GetFirstResponse().GetMet() != 1 {
		t.Fatalf("stats = %v", s)
	}
	policies, err := c.ListSlaPolicies(ctx, &supportv1.ListSlaPoliciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if p := policies.GetSlaPolicies()[2]; p.GetPriority() != supportv1.TicketPriority_TICKET_PRIORITY_HIGH || p.GetEtag() != "1" ||
		p.GetFirstResponseTarget().AsDuration() != 2*time.Hour {
		t.Fatalf("HIGH policy = %v", p)
	}
	// New tickets take the changed policy.
	if got := newTicket(); got.GetFirstResponse().GetTarget().AsDuration() != 2*time.Hour {
		t.Fatalf("new HIGH ticket's first-response target = %v, want 2h", got.GetFirstResponse().GetTarget().AsDuration())
	}
}
