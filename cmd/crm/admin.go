package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/flagenv"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redisconn"
)

const adminUsage = `usage:
  crm admin tenant create [--id ID] --name NAME
  crm admin key create --tenant ID --scopes SCOPE[,SCOPE...]
  crm admin redis init [--partitions N]
  crm admin events lag --producer SERVICE
  crm admin events dlq list --producer SERVICE --group SERVICE [--limit N]
  crm admin events dlq replay --producer SERVICE --group SERVICE [REF...]   (no REF: all)
  crm admin events dlq purge --producer SERVICE --group SERVICE [REF...]    (no REF: all)

Scopes: admin, or <service>.read / <service>.write for marketing, sales, product, support.
A dead letter's REF is "<partition>/<entry id>", as dlq list prints it. Replayed events go back on
their stream; groups that handled them before skip them by event id.
redis init records the partition count and every partition's marker: on a new Redis (a process's
first start does it too), or after Redis lost its data while the services ran, which they answer
with 503 STORE_NOT_INITIALIZED on every write until it is run.
Every command needs --redis-url (or REDIS_URL).
`

// adminCommands are the command words; flags and arguments follow them.
var adminCommands = []string{"redis init", "tenant create", "key create", "events lag", "events dlq list", "events dlq replay", "events dlq purge"}

func admin(ctx context.Context, args []string, stdout io.Writer) error {
	var words []string
	for len(words) < len(args) && len(words) < 3 && !strings.HasPrefix(args[len(words)], "-") {
		words = append(words, args[len(words)])
	}
	command := strings.Join(words, " ")
	if !slices.Contains(adminCommands, command) {
		fmt.Fprint(stdout, adminUsage)
		return fmt.Errorf("admin: unknown command %q", strings.Join(words, " "))
	}
	rest := args[len(strings.Fields(command)):]
	fs := flag.NewFlagSet("crm admin "+command, flag.ContinueOnError)
	fs.SetOutput(stdout)
	var redisCfg redisconn.Config
	redisCfg.RegisterFlags(fs)
	id := fs.String("id", "", "tenant id ([a-z0-9-], up to 32); random when empty")
	name := fs.String("name", "", "tenant display name")
	tenant := fs.String("tenant", "", "tenant id")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	producer := fs.String("producer", "", "the service whose event streams to inspect")
	group := fs.String("group", "", "the consumer group (the reacting service)")
	limit := fs.Int("limit", 50, "how many dead letters to list")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if err := flagenv.Apply(fs, "CRM", map[string]string{"redis-url": "REDIS_URL"}); err != nil {
		return err
	}
	if err := redisCfg.Validate(); err != nil {
		return err
	}
	rdb, err := openUntraced(ctx, redisCfg.URL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	switch command {
	case "redis init":
		if _, err := keyspace.Open(ctx, rdb, redisCfg.Partitions); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "redis initialized: %d partitions, every partition marked\n", redisCfg.Partitions)
		return nil
	case "tenant create":
		if *name == "" {
			return errors.New("admin: --name is required")
		}
		t, err := auth.NewStore(rdb).CreateTenant(ctx, *id, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s created (%s)\n", t.ID, t.DisplayName)
		return nil
	case "key create":
		k, err := auth.NewStore(rdb).CreateKey(ctx, *tenant, strings.Split(*scopes, ","))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s for tenant %s with scopes %s\n", k.ID, *tenant, *scopes)
		fmt.Fprintf(stdout, "secret (shown once, store it now): %s\n", k.Secret)
		return nil
	}

	if *producer == "" || (command != "events lag" && *group == "") {
		return errors.New("admin: --producer (and, for dlq, --group) are required")
	}
	keys, err := keyspace.Load(ctx, rdb)
	if err != nil {
		return err
	}
	switch command {
	case "events lag":
		return printLag(ctx, rdb, keys, *producer, stdout)
	case "events dlq list":
		dead, err := events.DeadLetters(ctx, rdb, keys, *producer, *group, *limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "REF\tEVENT\tTYPE\tTENANT\tDELIVERIES\tERROR")
		for _, d := range dead {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", d.Ref, d.Event.GetId(), d.Event.GetType(), d.Event.GetTenantId(), d.Deliveries, d.Error)
		}
		return w.Flush()
	case "events dlq replay":
		n, err := events.ReplayDeadLetters(ctx, rdb, keys, *producer, *group, fs.Args())
		fmt.Fprintf(stdout, "replayed %d dead letters\n", n)
		return err
	default: // events dlq purge
		n, err := events.PurgeDeadLetters(ctx, rdb, keys, *producer, *group, fs.Args())
		fmt.Fprintf(stdout, "purged %d dead letters\n", n)
		return err
	}
}

func printLag(ctx context.Context, rdb redis.UniversalClient, keys *keyspace.Space, producer string, stdout io.Writer) error {
	lag, err := events.Lag(ctx, rdb, keys, producer)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tPARTITION\tLAG\tPENDING\tDEAD LETTERS\tCONSUMERS\tLAST DELIVERED")
	for _, g := range lag {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", g.Group, g.Partition, g.Lag, g.Pending, g.DeadLetters, g.Consumers, g.LastDelivered)
	}
	return w.Flush()
}

// openUntraced opens Redis for one-off administrative work.
func openUntraced(ctx context.Context, url string) (redis.UniversalClient, error) {
	return redisconn.Open(ctx, redisconn.Config{URL: url}, tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
}
