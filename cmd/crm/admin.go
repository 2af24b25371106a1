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
	"time"

	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/flagenv"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redisconn"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	"github.com/crmcycle/crm/services/integration"
	"github.com/crmcycle/crm/services/integration/redisstore"
)

const adminUsage = `usage:
  crm admin tenant create [--id ID] --name NAME
  crm admin key create --tenant ID --scopes SCOPE[,SCOPE...] [--name NAME] [--expire-in DURATION]
  crm admin key list --tenant ID
  crm admin key revoke --tenant ID --key KEY_ID
  crm admin key rotate --tenant ID --key KEY_ID [--overlap DURATION]
  crm admin redis init [--partitions N] [--force]
  crm admin events lag --producer SERVICE
  crm admin events dlq list --producer SERVICE --group SERVICE [--limit N]
  crm admin events dlq replay --producer SERVICE --group SERVICE [REF...]   (no REF: all)
  crm admin events dlq purge --producer SERVICE --group SERVICE [REF...]    (no REF: all)

Scopes: admin, or <service>.read / <service>.write for marketing, sales, product, support,
integration. A revoked or rotated key stops working on every process within a second. Key
changes are in the tenant's audit log (integration.api_key.*), by actor "operator:cli".
A dead letter's REF is "<partition>/<entry id>", as dlq list prints it. Replayed events go back on
their stream; groups that handled them before skip them by event id.
redis init records the partition count and every partition's marker: on a new Redis (a process's
first start does it too), or after Redis lost its data while the services ran, which they answer
with 503 STORE_NOT_INITIALIZED on every write (and /readyz 503) until it is run. --partitions must
be the count the processes run with (their --partitions, default 16); a Redis that records another
count is refused, unless --force, which records the new count in every marker: only to repair an
init run with the wrong count.
Every command needs --redis-url (or REDIS_URL). crm admin --help lists each command's flags.
`

// adminFlags are the flags each command takes, beside the Redis connection's.
var adminFlags = map[string][]string{
	"redis init":        {"partitions", "force"},
	"tenant create":     {"id", "name"},
	"key create":        {"tenant", "scopes", "name", "expire-in"},
	"key list":          {"tenant"},
	"key revoke":        {"tenant", "key"},
	"key rotate":        {"tenant", "key", "overlap"},
	"events lag":        {"producer"},
	"events dlq list":   {"producer", "group", "limit"},
	"events dlq replay": {"producer", "group"},
	"events dlq purge":  {"producer", "group"},
}

// adminCommands are the command words; flags and arguments follow them.
var adminCommands = []string{"redis init", "tenant create", "key create", "key list", "key revoke", "key rotate",
	"events lag", "events dlq list", "events dlq replay", "events dlq purge"}

// adminOptions are the values of every admin flag; each command reads those adminFlags names.
type adminOptions struct {
	redis                         redisconn.Config
	id, name, tenant, scopes, key string
	producer, group               string
	limit                         int
	expireIn, overlap             time.Duration
	force                         bool
}

func (o *adminOptions) register(fs *flag.FlagSet) {
	o.redis.RegisterFlags(fs)
	fs.StringVar(&o.id, "id", "", "tenant id ([a-z0-9-], up to 32); random when empty")
	fs.StringVar(&o.name, "name", "", "display name (of the tenant, or of the key)")
	fs.StringVar(&o.tenant, "tenant", "", "tenant id")
	fs.StringVar(&o.scopes, "scopes", "", "comma-separated scopes")
	fs.StringVar(&o.key, "key", "", "API key id (as key list prints it)")
	fs.DurationVar(&o.expireIn, "expire-in", 0, "the key stops working after this long; 0 never")
	fs.DurationVar(&o.overlap, "overlap", 0, "how long the old secret keeps working after a rotation; 0 stops it at once")
	fs.StringVar(&o.producer, "producer", "", "the service whose event streams to inspect")
	fs.StringVar(&o.group, "group", "", "the consumer group (the reacting service)")
	fs.IntVar(&o.limit, "limit", 50, "how many dead letters to list")
	fs.BoolVar(&o.force, "force", false, "record --partitions even if the store records another count (repairs an init with the wrong count)")
}

// adminHelp prints every command with its own flags, then the connection flags they share.
func adminHelp(stdout io.Writer) {
	fmt.Fprint(stdout, adminUsage)
	var o adminOptions
	fs := flag.NewFlagSet("crm admin", flag.ContinueOnError)
	o.register(fs)
	common := flag.NewFlagSet("redis", flag.ContinueOnError)
	new(redisconn.Config).RegisterFlags(common)
	printFlag := func(name string) {
		f := fs.Lookup(name)
		fmt.Fprintf(stdout, "      --%s", f.Name)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			fmt.Fprintf(stdout, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(stdout, "\n          %s\n", f.Usage)
	}
	fmt.Fprintln(stdout, "\nCommands and their flags:")
	for _, c := range adminCommands {
		fmt.Fprintf(stdout, "  crm admin %s\n", c)
		for _, name := range adminFlags[c] {
			if common.Lookup(name) == nil {
				printFlag(name)
			}
		}
	}
	fmt.Fprintln(stdout, "\nEvery command also takes:")
	common.VisitAll(func(f *flag.Flag) { printFlag(f.Name) })
}

func admin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		adminHelp(stdout)
		return nil
	}
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
	var o adminOptions
	o.register(fs)
	redisCfg := &o.redis
	id, name, producer, group, limit := &o.id, &o.name, &o.producer, &o.group, &o.limit
	if err := fs.Parse(rest); err != nil {
		return err
	}
	var stray []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(adminFlags[command], f.Name) && !isRedisFlag(f.Name) {
			stray = append(stray, "--"+f.Name)
		}
	})
	if len(stray) > 0 {
		return fmt.Errorf("admin: %s does not take %s (crm admin --help lists its flags)", command, strings.Join(stray, ", "))
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
		return redisInit(ctx, rdb, redisCfg.Partitions, o.force, stdout)
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
	case "key create", "key list", "key revoke", "key rotate":
		return adminKeys(ctx, rdb, redisCfg.Partitions, command, o, stdout)
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

// redisInit records the partition count. A different count than the store's is refused unless
// forced: the processes running with the store's count would be stranded.
func redisInit(ctx context.Context, rdb redis.UniversalClient, partitions int, force bool, stdout io.Writer) error {
	if force {
		old, err := keyspace.Reinit(ctx, rdb, partitions)
		if err != nil {
			return err
		}
		if old != 0 && old != partitions {
			fmt.Fprintf(stdout, "redis re-initialized: %d partitions (was %d), every partition marked; processes must run with --partitions %d\n", partitions, old, partitions)
			return nil
		}
		fmt.Fprintf(stdout, "redis initialized: %d partitions, every partition marked\n", partitions)
		return nil
	}
	if _, err := keyspace.Open(ctx, rdb, partitions); err != nil {
		if m := (*keyspace.MismatchError)(nil); errors.As(err, &m) {
			return fmt.Errorf("admin: this Redis is initialized for %d partitions, not %d: nothing changed. "+
				"Run init with the count the processes run with (their --partitions or CRM_PARTITIONS, default 16); "+
				"if %d was recorded by mistake, add --force to record %d in every partition: %w",
				m.Recorded, m.Configured, m.Recorded, m.Configured, keyspace.ErrPartitionMismatch)
		}
		return err
	}
	fmt.Fprintf(stdout, "redis initialized: %d partitions, every partition marked\n", partitions)
	return nil
}

func isRedisFlag(name string) bool {
	fs := flag.NewFlagSet("redis", flag.ContinueOnError)
	new(redisconn.Config).RegisterFlags(fs)
	return fs.Lookup(name) != nil
}

// cliActor is the audit log's actor of the key changes crm admin makes: `actor = "operator:cli"`.
const cliActor = "cli"

// adminKeys creates, lists, revokes or rotates a tenant's API keys. Changes go through the
// integration service's use cases, as the API's do, so they are in the tenant's audit log
// (integration.api_key.*), by the operator's tool.
func adminKeys(ctx context.Context, rdb redis.UniversalClient, partitions int, command string, o adminOptions, stdout io.Writer) error {
	if o.tenant == "" || ((command == "key revoke" || command == "key rotate") && o.key == "") {
		return errors.New("admin: --tenant (and, to revoke or rotate, --key) are required")
	}
	store := auth.NewStore(rdb)
	if command == "key list" {
		return listKeys(ctx, store, o.tenant, stdout)
	}
	keys, err := apiKeys(ctx, rdb, store, partitions)
	if err != nil {
		return err
	}
	ctx = events.WithCause(ctx, events.ByOperator(cliActor))
	switch command {
	case "key create":
		in := &integrationv1.ApiKey{DisplayName: o.name, Scopes: strings.Split(o.scopes, ",")}
		if o.expireIn > 0 {
			in.ExpireTime = timestamppb.New(time.Now().Add(o.expireIn))
		}
		// The operator holds every scope: the principal the API would check against is admin.
		k, secret, err := keys.Create(ctx, auth.Principal{TenantID: o.tenant, Scopes: []string{auth.ScopeAdmin}}, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s for tenant %s with scopes %s\n", k.ID, o.tenant, o.scopes)
		fmt.Fprintf(stdout, "secret (shown once, store it now): %s\n", secret)
		return nil
	case "key revoke":
		k, err := keys.Revoke(ctx, o.tenant, o.key)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s revoked at %s\n", k.ID, k.RevokeTime.Format(time.RFC3339))
		return nil
	default: // key rotate
		k, secret, err := keys.Rotate(ctx, o.tenant, o.key, o.overlap)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s rotated", k.ID)
		if !k.PreviousSecretExpireTime.IsZero() {
			fmt.Fprintf(stdout, "; the old secret works until %s", k.PreviousSecretExpireTime.Format(time.RFC3339))
		}
		fmt.Fprintf(stdout, "\nsecret (shown once, store it now): %s\n", secret)
		return nil
	}
}

// apiKeys are the integration service's key use cases over rdb. A Redis that records no partition
// count is refused, not initialized: it may be one that lost its data under running processes,
// which an operator re-initializes on purpose (crm admin redis init), not a key command by the way.
func apiKeys(ctx context.Context, rdb redis.UniversalClient, store *auth.Store, partitions int) (*integration.ApiKeys, error) {
	n, err := rdb.Exists(ctx, keyspace.PartitionsKey).Result()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("admin: %w (no %s: nothing has run on this Redis yet, or it lost its data); "+
			"nothing changed. Start crm serve once, or run: crm admin redis init --partitions %d",
			keyspace.ErrNotInitialized, keyspace.PartitionsKey, partitions)
	}
	space, err := keyspace.Load(ctx, rdb)
	if err != nil {
		return nil, err
	}
	pub := events.Publisher{Producer: "integration", Propagator: propagation.TraceContext{}}
	return integration.NewApiKeys(store, redisstore.New(rdb, space), pub, time.Now), nil
}

// listKeys prints the tenant's keys, newest first.
func listKeys(ctx context.Context, store *auth.Store, tenant string, stdout io.Writer) error {
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	after := ""
	for {
		keys, next, err := store.ListKeys(ctx, tenant, after, 100)
		if err != nil {
			return err
		}
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.DisplayName, strings.Join(k.Scopes, ","),
				when(k.CreateTime), when(k.LastUsedTime), when(k.ExpireTime), when(k.RevokeTime))
		}
		if next == "" {
			return w.Flush()
		}
		after = next
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
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
