package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	"github.com/crmcycle/crm/services/support"
	"github.com/crmcycle/crm/services/support/redisstore"
)

// TestEraseFinishesAfterACrashAtEveryStep runs support's reaction to the erasure of a customer
// with 130 tickets (each with a comment, one rated with a comment) and 130 NPS answers with
// comments (two batches of each), and dies after each of its Redis scripts in turn; the
// redelivered event, handled twice by a process that lives, ends where an erasure that never died
// ends: every ticket of the customer redacted (subject "[erased]", no description, no rating
// comment, no comments) with its ids, status, priority, times, SLA clocks and rating's score kept,
// every answer's comment cleared with its score kept, the tenant's lists and counters as before,
// and another customer's tickets and answers untouched.
func TestEraseFinishesAfterACrashAtEveryStep(t *testing.T) {
	sys := startSystem(t)
	deps := sys.Suite.Deps
	ctx := context.Background()
	const bystanderOwn, erasedOwn = 3, 130
	handle := func(rdb redis.UniversalClient, ev *eventv1.Event) error {
		erases := support.NewErasures(redisstore.New(rdb, deps.Keys))
		return events.Subscribe("support", events.On(marketingv1.EventCustomerErased, erases.OnCustomerErased))[0].Handle(ctx, ev)
	}
	writes := int64(1 << 30) // counted on the run that does not die (cut -1)
	for cut := int64(-1); cut <= writes; cut++ {
		t.Run(fmt.Sprint("after script ", cut), func(t *testing.T) {
			tenant, _ := sys.NewKey(t, "", supportScopes...)
			store := redisstore.New(deps.Redis, deps.Keys)
			bystander, erased := uuid.NewString(), uuid.NewString()
			pub := events.Publisher{Producer: "support", Propagator: propagation.TraceContext{}}
			before := map[string]*supportv1.Ticket{}
			answersBefore := map[string]*supportv1.NpsResponse{}
			for i := range bystanderOwn + erasedOwn {
				customer := bystander
				if i >= bystanderOwn {
					customer = erased
				}
				now := time.Now()
				tk := &supportv1.Ticket{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Subject: "Ada's invoice",
					Description: "Ada Lovelace, 12 Main St", Status: supportv1.TicketStatus_TICKET_STATUS_SOLVED,
					Priority:      supportv1.TicketPriority_TICKET_PRIORITY_HIGH,
					FirstResponse: &supportv1.SlaClock{Breached: true}, CreateTime: timestamppb.New(now), UpdateTime: timestamppb.New(now), Etag: "1"}
				if i%50 == 0 {
					tk.Csat = &supportv1.Csat{Score: 2, Comment: "Ada is unhappy", RateTime: timestamppb.New(now)}
				}
				comment := &supportv1.Comment{Id: uuid.Must(uuid.NewV7()).String(), TicketId: tk.GetId(), Body: "call Ada on 555-0100", CreateTime: timestamppb.New(now)}
				if err := store.SaveTicket(ctx, tenant, support.TicketWrite{Ticket: tk, Comment: comment}); err != nil {
					t.Fatal(err)
				}
				a := &supportv1.NpsResponse{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Score: int32(i % 11),
					Comment: "Ada says hi", Category: supportv1.NpsCategory_NPS_CATEGORY_PASSIVE, CreateTime: timestamppb.New(now)}
				_, ev, err := pub.Envelope(ctx, supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{ResponseId: a.GetId(), CustomerId: customer, Score: a.GetScore()}), tenant, customer, now)
				if err != nil {
					t.Fatal(err)
				}
				if err := store.SaveNpsResponse(ctx, tenant, a, support.Tally{"nps_passives": 1}, ev); err != nil {
					t.Fatal(err)
				}
				before[tk.GetId()], answersBefore[a.GetId()] = tk, a
			}
			tallyBefore, err := store.Tally(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := anypb.New(&marketingv1.CustomerErased{CustomerId: erased})
			if err != nil {
				t.Fatal(err)
			}
			ev := &eventv1.Event{Id: uuid.NewString(), Type: marketingv1.EventCustomerErased.Name, TenantId: tenant, Payload: payload}

			crash := redistest.CrashAfter(cut)
			dying := redistest.Client(t)
			dying.AddHook(crash)
			err = handle(dying, ev)
			switch {
			case cut < 0:
				if writes = crash.Seen(); err != nil || writes < 4 {
					t.Fatalf("the erasure without a crash: %d scripts, %v", writes, err)
				}
			case cut < writes && !errors.Is(err, redistest.ErrCrashed):
				t.Fatalf("the dying process's erasure returned %v, want it to die after script %d", err, cut)
			case err != nil && !errors.Is(err, redistest.ErrCrashed):
				t.Fatalf("an erasure dying after its last script failed with %v", err)
			}
			for range 2 {
				if err := handle(deps.Redis, ev); err != nil {
					t.Fatal(err)
				}
			}

			all, err := store.ListTickets(ctx, tenant, support.TicketIndex{}, page.Request{Limit: 1000})
			if err != nil || len(all.Items) != len(before) {
				t.Fatalf("the tenant's tickets after the erasure: %d %v, want %d", len(all.Items), err, len(before))
			}
			for _, got := range all.Items {
				want := proto.CloneOf(before[got.GetId()])
				if want.GetCustomerId() == erased {
					want.Subject, want.Description = support.ErasedText, ""
					if want.Csat != nil {
						want.Csat.Comment = ""
					}
					want.Etag = "2" // once, however often the event came
				}
				if !proto.Equal(got, want) {
					t.Fatalf("ticket after the erasure = %v, want %v", got, want)
				}
				comments, err := store.ListComments(ctx, tenant, got.GetId(), page.Request{Limit: 10})
				if wantN := map[bool]int{true: 0, false: 1}[want.GetCustomerId() == erased]; err != nil || len(comments.Items) != wantN {
					t.Fatalf("comments of %s's ticket after the erasure: %v %v, want %d", want.GetCustomerId(), comments.Items, err, wantN)
				}
			}
			answers, err := store.ListNpsResponses(ctx, tenant, "", page.Request{Limit: 1000})
			if err != nil || len(answers.Items) != len(answersBefore) {
				t.Fatalf("the tenant's answers after the erasure: %d %v, want %d", len(answers.Items), err, len(answersBefore))
			}
			for _, got := range answers.Items {
				want := proto.CloneOf(answersBefore[got.GetId()])
				if want.GetCustomerId() == erased {
					want.Comment = ""
				}
				if !proto.Equal(got, want) {
					t.Fatalf("answer after the erasure = %v, want %v", got, want)
				}
			}
			if after, err := store.Tally(ctx, tenant); err != nil || fmt.Sprint(after) != fmt.Sprint(tallyBefore) {
				t.Fatalf("counters %v -> %v (%v): an erasure uncounts nothing", tallyBefore, after, err)
			}
		})
	}
}
