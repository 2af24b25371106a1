package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
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

// TestMergeFinishesAfterACrashAtEveryStep runs support's reaction to a merge of a customer with
// 130 tickets and 130 NPS answers (two batches of each) and dies after each of its Redis scripts
// in turn; the redelivered event, handled by a process that lives (twice, as a redelivery may
// come again), ends where a merge that never died ends: every ticket and answer of both customers
// on the survivor (record and index), none left on the merged customer, the tenant's lists and
// counters as before.
func TestMergeFinishesAfterACrashAtEveryStep(t *testing.T) {
	sys := startSystem(t)
	deps := sys.Suite.Deps
	ctx := context.Background()
	const survivorOwn, mergedOwn = 3, 130
	handle := func(rdb redis.UniversalClient, ev *eventv1.Event) error {
		merges := support.NewMerges(redisstore.New(rdb, deps.Keys))
		return events.Subscribe("support", events.On(marketingv1.EventCustomerMerged, merges.OnCustomerMerged))[0].Handle(ctx, ev)
	}
	writes := int64(1 << 30) // counted on the run that does not die (cut -1)
	for cut := int64(-1); cut <= writes; cut++ {
		t.Run(fmt.Sprint("after script ", cut), func(t *testing.T) {
			tenant, _ := sys.NewKey(t, "", supportScopes...)
			store := redisstore.New(deps.Redis, deps.Keys)
			survivor, merged := uuid.NewString(), uuid.NewString()
			pub := events.Publisher{Producer: "support", Propagator: propagation.TraceContext{}}
			var tickets, answers []string
			for i := range survivorOwn + mergedOwn {
				customer := survivor
				if i >= survivorOwn {
					customer = merged
				}
				now := time.Now()
				tk := &supportv1.Ticket{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Subject: "s",
					Status: supportv1.TicketStatus_TICKET_STATUS_NEW, Priority: supportv1.TicketPriority_TICKET_PRIORITY_NORMAL,
					CreateTime: timestamppb.New(now), UpdateTime: timestamppb.New(now), Etag: "1"}
				if err := store.SaveTicket(ctx, tenant, support.TicketWrite{Ticket: tk}); err != nil {
					t.Fatal(err)
				}
				a := &supportv1.NpsResponse{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, Score: int32(i % 11),
					Category: supportv1.NpsCategory_NPS_CATEGORY_PASSIVE, CreateTime: timestamppb.New(now)}
				_, ev, err := pub.Envelope(ctx, supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{ResponseId: a.GetId(), CustomerId: customer, Score: a.GetScore()}), tenant, customer, now)
				if err != nil {
					t.Fatal(err)
				}
				if err := store.SaveNpsResponse(ctx, tenant, a, support.Tally{"nps_passives": 1}, ev); err != nil {
					t.Fatal(err)
				}
				tickets, answers = append(tickets, tk.GetId()), append(answers, a.GetId())
			}
			tallyBefore, err := store.Tally(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := anypb.New(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged})
			if err != nil {
				t.Fatal(err)
			}
			ev := &eventv1.Event{Id: uuid.NewString(), Type: marketingv1.EventCustomerMerged.Name, TenantId: tenant, Payload: payload}

			crash := redistest.CrashAfter(cut)
			dying := redistest.Client(t)
			dying.AddHook(crash)
			err = handle(dying, ev)
			switch {
			case cut < 0:
				// Two batches of tickets and two of answers, each read then written.
				if writes = crash.Seen(); err != nil || writes < 4 {
					t.Fatalf("the merge without a crash: %d scripts, %v", writes, err)
				}
			case cut < writes && !errors.Is(err, redistest.ErrCrashed):
				t.Fatalf("the dying process's merge returned %v, want it to die after script %d", err, cut)
			case err != nil && !errors.Is(err, redistest.ErrCrashed):
				// After the last script the process may still die on the reads that find nothing left.
				t.Fatalf("a merge dying after its last script failed with %v", err)
			}
			for range 2 {
				if err := handle(deps.Redis, ev); err != nil {
					t.Fatal(err)
				}
			}

			ticketsOf := func(customer string) []string {
				p, err := store.ListTickets(ctx, tenant, support.TicketIndex{Customer: customer}, page.Request{Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, tk := range p.Items {
					if tk.GetCustomerId() != customer {
						t.Fatalf("ticket %s in %s's index names %s", tk.GetId(), customer, tk.GetCustomerId())
					}
					out = append(out, tk.GetId())
				}
				return out
			}
			answersOf := func(customer string) []string {
				p, err := store.ListNpsResponses(ctx, tenant, customer, page.Request{Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, a := range p.Items {
					if customer != "" && a.GetCustomerId() != customer {
						t.Fatalf("answer %s in %s's index names %s", a.GetId(), customer, a.GetCustomerId())
					}
					out = append(out, a.GetId())
				}
				return out
			}
			newestFirst := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
			if got := ticketsOf(survivor); !slices.Equal(got, newestFirst(tickets)) || len(ticketsOf(merged)) != 0 {
				t.Fatalf("tickets after the merge: %d on the survivor, %d on the merged customer; want %d and 0",
					len(got), len(ticketsOf(merged)), len(tickets))
			}
			if got := answersOf(survivor); !slices.Equal(got, newestFirst(answers)) || len(answersOf(merged)) != 0 {
				t.Fatalf("NPS answers after the merge: %d on the survivor, %d on the merged customer; want %d and 0",
					len(got), len(answersOf(merged)), len(answers))
			}
			if got := answersOf(""); !slices.Equal(got, newestFirst(answers)) {
				t.Fatalf("the tenant's answers after the merge: %d, want each of the %d once", len(got), len(answers))
			}
			if after, err := store.Tally(ctx, tenant); err != nil || fmt.Sprint(after) != fmt.Sprint(tallyBefore) {
				t.Fatalf("counters %v -> %v (%v): a merge counts nothing", tallyBefore, after, err)
			}
		})
	}
}
