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
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/redistest"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	"github.com/crmcycle/crm/services/sales"
	"github.com/crmcycle/crm/services/sales/redisstore"
)

// TestMergeFinishesAfterACrashAtEveryStep runs sales' reaction to a merge of a customer with
// 250 orders (three batches) and dies after each of its writes in turn; the redelivered event,
// handled by a fresh process, ends in the same state as a merge that never crashed: every order
// on the survivor (record and index), none left on the merged customer, the values combined once.
func TestMergeFinishesAfterACrashAtEveryStep(t *testing.T) {
	sys := startSystem(t)
	deps := sys.Suite.Deps
	env := func(rdb redis.UniversalClient) sales.Env {
		return sales.Env{Store: redisstore.New(rdb, deps.Keys), Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}, Now: time.Now}
	}
	const survivorOrders, mergedOrders = 3, 250
	// The writes of a merge that never crashes (three order batches, then the value merge), as
	// counted on a run that does not crash; cut == writes is that run.
	writes := int64(1 << 30)
	for cut := int64(-1); cut <= writes; cut++ {
		t.Run(fmt.Sprint("after write ", cut), func(t *testing.T) {
			tenant, _ := sys.NewKey(t, "", "sales.read")
			survivor, merged := uuid.NewString(), uuid.NewString()
			var orders []*salesv1.Order
			for i := range survivorOrders + mergedOrders {
				customer := survivor
				if i >= survivorOrders {
					customer = merged
				}
				at := time.Now().Add(-time.Duration(i) * time.Minute).Truncate(time.Millisecond)
				orders = append(orders, &salesv1.Order{Id: uuid.NewString(), CustomerId: customer, CurrencyCode: "EUR",
					Lines: []*salesv1.OrderLine{{ProductId: uuid.NewString(), Quantity: 1, UnitPrice: money("EUR", 10e9), Total: money("EUR", 10e9)}},
					Total: money("EUR", 10e9), CreateTime: timestamppb.New(at), UpdateTime: timestamppb.New(at), Etag: "1"})
			}
			place(t, sys, tenant, orders)
			payload, err := anypb.New(&marketingv1.CustomerMerged{SurvivorCustomerId: survivor, MergedCustomerId: merged})
			if err != nil {
				t.Fatal(err)
			}
			ev := &eventv1.Event{Id: uuid.NewString(), Type: marketingv1.EventCustomerMerged.Name, TenantId: tenant, Payload: payload}
			handle := func(rdb redis.UniversalClient) error {
				return events.Subscribe("sales", sales.NewReactions(env(rdb)).Routes()...)[0].Handle(context.Background(), ev)
			}

			crash := redistest.CrashAfter(cut) // never, on the measuring run (cut -1)
			dying := redistest.Client(t)
			dying.AddHook(crash)
			err = handle(dying)
			if cut < 0 {
				if writes = crash.Seen(); err != nil || writes < 4 {
					t.Fatalf("the merge without a crash: %d writes, %v", writes, err)
				}
			}
			switch {
			case cut >= 0 && cut < writes && !errors.Is(err, redistest.ErrCrashed):
				t.Fatalf("the dying process's merge returned %v, want it to die after write %d", err, cut)
			case cut == writes && err != nil:
				t.Fatalf("a merge of %d writes failed with %v", writes, err)
			}
			// Redelivered to a process that lives (and once more, as a redelivery would).
			for range 2 {
				if err := handle(deps.Redis); err != nil {
					t.Fatal(err)
				}
			}

			store := redisstore.New(deps.Redis, deps.Keys)
			byCustomer := func(customer string) []*salesv1.Order {
				ix, err := sales.ParseOrderFilter(fmt.Sprintf("customer_id = %q", customer))
				if err != nil {
					t.Fatal(err)
				}
				p, err := store.ListOrders(context.Background(), tenant, sales.Query{Index: ix, Request: page.Request{Limit: 1000}})
				if err != nil {
					t.Fatal(err)
				}
				return p.Items
			}
			got := byCustomer(survivor)
			if len(got) != survivorOrders+mergedOrders || len(byCustomer(merged)) != 0 {
				t.Fatalf("after the merge: %d orders on the survivor, %d on the merged customer; want %d and 0",
					len(got), len(byCustomer(merged)), survivorOrders+mergedOrders)
			}
			for _, o := range got {
				if o.GetCustomerId() != survivor {
					t.Fatalf("order %s in the survivor's index names customer %s", o.GetId(), o.GetCustomerId())
				}
			}
			v, _, err := store.CustomerValue(context.Background(), tenant, survivor)
			if err != nil {
				t.Fatal(err)
			}
			if v.GetOrderCount() != survivorOrders+mergedOrders {
				t.Fatalf("survivor's value counts %d orders, want %d", v.GetOrderCount(), survivorOrders+mergedOrders)
			}
			if m, _, err := store.CustomerValue(context.Background(), tenant, merged); err != nil || m != nil {
				t.Fatalf("merged customer's value after the merge: %v %v", m, err)
			}
			if s, err := store.SurvivorOf(context.Background(), tenant, merged); err != nil || s != survivor {
				t.Fatalf("SurvivorOf(merged) = %q %v", s, err)
			}
		})
	}
}
