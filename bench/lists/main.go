// Command listsfill adds leads to one tenant, for bench/run.sh's list runs (lists
// flat from 10 thousand to 1 million leads, DESIGN.md §10). It writes with marketing's own store
// (redisstore.Store.CreateLead: the record, its e-mail entry and every list and search index, one
// atomic script per lead), so the layout is the one the service reads; the leads carry no events
// and no lifecycle, which lists do not read.
//
//	listsfill --redis-url redis://127.0.0.1:PORT --tenant lists --add 90000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/keyspace"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
	"github.com/crmcycle/crm/services/marketing/redisstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "listsfill:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("redis-url", "", "Redis to fill (crm dev's)")
	tenant := flag.String("tenant", "lists", "tenant to fill")
	add := flag.Int("add", 10000, "leads to add")
	workers := flag.Int("workers", 32, "writes in flight")
	flag.Parse()
	if *url == "" || *add < 1 || *workers < 1 {
		return errors.New("--redis-url is required; --to and --workers must be positive")
	}
	opts, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	opts.PoolSize = *workers
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := keyspace.Load(ctx, rdb)
	if err != nil {
		return err
	}
	store := redisstore.New(rdb, keys)
	start, todo := time.Now(), int64(*add)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *workers)
	for range *workers {
		wg.Go(func() {
			for next.Add(1) <= todo {
				if err := store.CreateLead(ctx, *tenant, marketing.LeadWrite{Lead: newLead()}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("added %d leads to tenant %s in %.1fs\n", todo, *tenant, time.Since(start).Seconds())
	return nil
}

func newLead() *marketing.Lead {
	id, customer := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	now := timestamppb.Now()
	return &marketing.Lead{
		Id: id, CustomerId: customer, Email: "l-" + id + "@example.com", GivenName: "Ada", FamilyName: "Lovelace",
		Company: "Analytical Engines", Channel: typev1.Channel_CHANNEL_WEB, Status: marketingv1.LeadStatus_LEAD_STATUS_NEW,
		CreateTime: now, UpdateTime: now, Etag: "1",
	}
}
