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

// TestSupportTenantIsolation walks every support RPC with another tenant's key: a ticket of the
// owner is NOT_FOUND to it and unchanged afterwards, and the tenant-wide reads (lists, policies,
// settings, statistics, sweep) show it nothing of the owner's.
func TestSupportTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	_, ownerKey := sys.NewKey(t, "", supportScopes...)
	_, foreignKey := sys.NewKey(t, "", supportScopes...)
	c, owner := sys.support(ownerKey)
	_, foreign := sys.support(foreignKey)

	created, err := c.CreateTicket(owner, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{
		CustomerId: supportCustomer, Subject: "Mine", Priority: supportv1.TicketPriority_TICKET_PRIORITY_URGENT}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTicket().GetId()
	if _, err := c.AddComment(owner, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{Body: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSlaPolicy(owner, &supportv1.UpdateSlaPolicyRequest{SlaPolicy: &supportv1.SlaPolicy{
		Priority: supportv1.TicketPriority_TICKET_PRIORITY_URGENT, FirstResponseTarget: durationpb.New(2 * time.Minute),
		ResolutionTarget: durationpb.New(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSupportSettings(owner, &supportv1.UpdateSupportSettingsRequest{Settings: &supportv1.SupportSettings{AutoCloseDays: 9}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordNpsResponse(owner, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{CustomerId: supportCustomer, Score: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTicket(owner, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{CustomerId: supportCustomer, Subject: "Two"}}); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetTicket(owner, &supportv1.GetTicketRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}

	for name, call := range map[string]func(context.Context) error{
		"GetTicket": func(ctx context.Context) error {
			_, err := c.GetTicket(ctx, &supportv1.GetTicketRequest{Id: id})
			return err
		},
		"UpdateTicket": func(ctx context.Context) error {
			_, err := c.UpdateTicket(ctx, &supportv1.UpdateTicketRequest{Ticket: &supportv1.Ticket{Id: id, Subject: "theirs"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"subject"}}})
			return err
		},
		"AssignTicket": func(ctx context.Context) error {
			_, err := c.AssignTicket(ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: "x"})
			return err
		},
		"OpenTicket": func(ctx context.Context) error {
			_, err := c.OpenTicket(ctx, &supportv1.OpenTicketRequest{Id: id})
			return err
		},
		"PendTicket": func(ctx context.Context) error {
			_, err := c.PendTicket(ctx, &supportv1.PendTicketRequest{Id: id})
			return err
		},
		"HoldTicket": func(ctx context.Context) error {
			_, err := c.HoldTicket(ctx, &supportv1.HoldTicketRequest{Id: id})
			return err
		},
		"SolveTicket": func(ctx context.Context) error {
			_, err := c.SolveTicket(ctx, &supportv1.SolveTicketRequest{Id: id})
			return err
		},
		"ReopenTicket": func(ctx context.Context) error {
			_, err := c.ReopenTicket(ctx, &supportv1.ReopenTicketRequest{Id: id})
			return err
		},
		"CloseTicket": func(ctx context.Context) error {
			_, err := c.CloseTicket(ctx, &supportv1.CloseTicketRequest{Id: id})
			return err
		},
		"RateTicket": func(ctx context.Context) error {
			_, err := c.RateTicket(ctx, &supportv1.RateTicketRequest{Id: id, Score: 1})
			return err
		},
		"AddComment": func(ctx context.Context) error {
			_, err := c.AddComment(ctx, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{Body: "x"}})
			return err
		},
		"ListComments": func(ctx context.Context) error {
			_, err := c.ListComments(ctx, &supportv1.ListCommentsRequest{TicketId: id})
			return err
		},
	} {
		if err := call(foreign); status.Code(err) != codes.NotFound {
			t.Errorf("%s with a foreign key: %v, want NotFound", name, err)
		}
	}
	got, err := c.GetTicket(owner, &supportv1.GetTicketRequest{Id: id})
	if err != nil || got.GetTicket().GetEtag() != before.GetTicket().GetEtag() {
		t.Fatalf("owner's ticket after the foreign calls: %v, %v; want it unchanged", got.GetTicket(), err)
	}

	// Tenant-wide reads and the sweep see only the caller's tenant.
	list, err := c.ListTickets(foreign, &supportv1.ListTicketsRequest{})
	if err != nil || len(list.GetTickets()) != 0 {
		t.Errorf("foreign list: %v, %v; want empty", list.GetTickets(), err)
	}
	byCustomer, err := c.ListTickets(foreign, &supportv1.ListTicketsRequest{Filter: `customer_id = "` + supportCustomer + `"`})
	if err != nil || len(byCustomer.GetTickets()) != 0 {
		t.Errorf("foreign list by customer: %v, %v; want empty", byCustomer.GetTickets(), err)
	}
	// A page token is bound to its tenant.
	ownerList, err := c.ListTickets(owner, &supportv1.ListTicketsRequest{PageSize: 1})
	if err != nil || ownerList.GetNextPageToken() == "" {
		t.Fatalf("owner list: %v, %v", ownerList, err)
	}
	if _, err := c.ListTickets(foreign, &supportv1.ListTicketsRequest{PageSize: 1, PageToken: ownerList.GetNextPageToken()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("owner's page token with a foreign key: %v, want InvalidArgument", err)
	}
	policies, err := c.ListSlaPolicies(foreign, &supportv1.ListSlaPoliciesRequest{})
	if err != nil || policies.GetSlaPolicies()[3].GetEtag() != "0" {
		t.Errorf("foreign policies: %v, %v; want the defaults", policies, err)
	}
	settings, err := c.GetSupportSettings(foreign, &supportv1.GetSupportSettingsRequest{})
	if err != nil || settings.GetSettings().GetAutoCloseDays() != 4 {
		t.Errorf("foreign settings: %v, %v; want the defaults", settings, err)
	}
	stats, err := c.GetSupportStats(foreign, &supportv1.GetSupportStatsRequest{})
	if err != nil || stats.GetStats().GetTicketsCreated() != 0 || stats.GetStats().GetNpsDetractors() != 0 {
		t.Errorf("foreign stats: %v, %v; want nothing", stats, err)
	}
	sweep, err := c.SweepTickets(foreign, &supportv1.SweepTicketsRequest{})
	if err != nil || sweep.GetBreaches() != 0 || sweep.GetClosed() != 0 {
		t.Errorf("foreign sweep: %v, %v; want nothing", sweep, err)
	}
}
