// Command valueseed fills a tenant with customers who bought, for the value and funnel cases of
// bench/cases/value.sh: each new customer places an order through sales' own order write
// (sales.Orders.Place: the order, its customer value and rankings in one commit) and moves along
// marketing's lifecycle (marketing.Lifecycle.Move: the move and its funnel counters, all time and
// by period), straight against the bench's Redis, many at once. It prints the ids of up to --ids
// of the customers it made, one a line, for ghz to read round robin.
//
//	valueseed --redis-url redis://127.0.0.1:PORT --partitions 16 --tenant dev --customers 10000
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	mredis "github.com/crmcycle/crm/services/marketing/redisstore"
	"github.com/crmcycle/crm/services/sales"
	sredis "github.com/crmcycle/crm/services/sales/redisstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "valueseed:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("redis-url", "redis://127.0.0.1:6379", "the bench's Redis")
	partitions := flag.Int("partitions", 16, "the partition count the bench's crm recorded")
	tenant := flag.String("tenant", "dev", "the tenant to fill")
	customers := flag.Int("customers", 10000, "customers to add")
	workers := flag.Int("workers", 64, "writes at once")
	ids := flag.Int("ids", 200, "customer ids to print")
	flag.Parse()

	opts, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	opts.PoolSize = *workers
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := keyspace.Open(ctx, rdb, *partitions)
	if err != nil {
		return err
	}
	now := time.Now
	sales := sales.NewOrders(sales.Env{Store: sredis.New(rdb, keys), Now: now,
		Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}}, nil)
	lifecycle := marketing.NewLifecycle(mredis.New(rdb, keys), events.Publisher{Producer: "marketing", Propagator: propagation.TraceContext{}}, now)

	var next atomic.Int64
	var printed sync.Mutex
	shown := 0
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for w := range *workers {
		rng := mathrand.New(mathrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		wg.Go(func() {
			for next.Add(1) <= int64(*customers) {
				customer := customerSeenAt(time.Now().Add(-time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))))
				if err := seed(ctx, sales, lifecycle, *tenant, customer, rng); err != nil {
					errs <- err
					return
				}
				printed.Lock()
				if shown < *ids {
					fmt.Println(customer)
					shown++
				}
				printed.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	slog.Info("seeded", "tenant", *tenant, "customers", *customers)
	return nil
}

// seed places one or two orders for a new customer and, for one in ten, moves them from PROSPECT
// to their stage (a funnel read is bounded by stages and stay buckets whatever the customers, so
// a sample of moves fills it).
func seed(ctx context.Context, orders *sales.Orders, lifecycle *marketing.Lifecycle, tenant, customer string, rng *mathrand.Rand) error {
	n := 1
	if rng.IntN(4) == 0 {
		n = 2
	}
	for range n {
		total := &typev1.Money{CurrencyCode: []string{"EUR", "USD"}[rng.IntN(2)], Units: 1 + rng.Int64N(5000), Nanos: int32(rng.IntN(1e9))}
		at := timestamppb.New(time.Now().Add(-time.Duration(rng.Int64N(int64(180 * 24 * time.Hour)))))
		order := &salesv1.Order{Id: uuid.Must(uuid.NewV7()).String(), CustomerId: customer, CurrencyCode: total.GetCurrencyCode(),
			Total: total, CreateTime: at, UpdateTime: at, Etag: "1",
			Lines: []*salesv1.OrderLine{{ProductId: uuid.NewString(), Quantity: 1, UnitPrice: total, Total: total}}}
		if _, err := orders.Place(ctx, tenant, order); err != nil {
			return err
		}
	}
	stages := []marketingv1.LifecycleStage{marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT,
		marketingv1.LifecycleStage_LIFECYCLE_STAGE_FIRST_TIME_CUSTOMER, marketingv1.LifecycleStage_LIFECYCLE_STAGE_REPEAT_CUSTOMER}
	if rng.IntN(10) > 0 {
		return nil
	}
	for _, s := range stages[:1+n] {
		_, err := lifecycle.Move(ctx, tenant, customer, marketing.LifecycleMove{Stage: s, Cause: "valueseed"})
		if errors.Is(err, marketing.ErrLifecycleMove) {
			// crm's own reaction to the order (marketing's ladder) moved the customer first.
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// customerSeenAt is a UUIDv7 customer id minted at t.
func customerSeenAt(t time.Time) string {
	var id uuid.UUID
	_, _ = rand.Read(id[:])
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	id[6] = id[6]&0x0f | 0x70
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}
