package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/crmcycle/crm/gateway"
	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/flagenv"
	"github.com/crmcycle/crm/pkg/grpcserver"
	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/ratelimit"
	"github.com/crmcycle/crm/pkg/redisconn"
	integration "github.com/crmcycle/crm/services/integration/server"
)

// serviceTargets are the mountable services, in the order they are set up.
var serviceTargets = []string{"marketing", "sales", "product", "support", "integration"}

const gatewayTarget = "gateway"

// processConfig is everything one process needs; each component registers its own flags.
type processConfig struct {
	Targets       []string
	GRPC          grpcserver.Config
	Gateway       gateway.Config
	Redis         redisconn.Config
	AdminAddr     string
	Pprof         bool // serve /debug/pprof/ on the admin address
	ServiceAddrs  map[string]*string
	ClientTimeout time.Duration
	LogLevel      slog.Level
	Bus           busConfig
	RateLimit     ratelimit.Config
	Integration   integration.Config
	// ImportBatchesInFlight is how many batches one file import writes at once.
	ImportBatchesInFlight int
	targetFlag            string
	// dev is crm dev's: the gateway joins the targets whenever the four stage services run in the
	// process (or have an address), and runs without the integration service when it has none
	// (its routes then answer 503 UNAVAILABLE, SERVICE_NOT_RUNNING), so the REST edge is there to
	// measure a write with and without integration.
	dev bool
}

// busConfig tunes the event bus: how consumers retry and how long streams keep events.
type busConfig struct {
	Consumer  events.ConsumerConfig
	Retention events.Retention
}

func (c *busConfig) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Consumer.ClaimIdle, "event-claim-idle", 30*time.Second, "how long an unacknowledged event waits before another consumer takes it over")
	fs.IntVar(&c.Consumer.MaxDeliveries, "event-max-deliveries", 5, "deliveries of a failing event before it is dead-lettered (failures of an unavailable store do not count)")
	fs.DurationVar(&c.Consumer.Linger, "event-linger", events.DefaultLinger, "how long a consumer group's reader of a partition pauses after a read of only event types the group does not handle, so that its next read takes several writes' events (negative: no pause)")
	fs.DurationVar(&c.Consumer.LeaseTTL, "event-lease-ttl", 10*time.Second, "how long a partition stays with a consumer that stopped (crashed) before another takes it over")
	fs.DurationVar(&c.Retention.MaxAge, "event-max-age", 7*24*time.Hour, "events older than this are trimmed once every group has them")
	fs.Int64Var(&c.Retention.MaxLen, "event-max-len", 1_000_000, "entries kept per partition stream once every group has them")
	fs.DurationVar(&c.Retention.Interval, "event-trim-interval", time.Minute, "how often streams are trimmed")
}

func (c *busConfig) validate() error {
	// A redelivered event is recognized by its seen marker only while the marker lives.
	if c.Retention.MaxAge <= 0 || c.Retention.MaxAge >= events.SeenTTL {
		return fmt.Errorf("--event-max-age must be positive and below %s, how long handled events are remembered", events.SeenTTL)
	}
	if c.Consumer.ClaimIdle <= 0 || c.Consumer.MaxDeliveries <= 0 || c.Retention.Interval <= 0 {
		return errors.New("--event-claim-idle, --event-max-deliveries and --event-trim-interval must be positive")
	}
	return nil
}

func (c *processConfig) registerFlags(fs *flag.FlagSet, withTarget bool) {
	if withTarget {
		fs.StringVar(&c.targetFlag, "target", "all", "what to run: all, or a comma list of marketing, sales, product, support, integration, gateway")
	}
	c.GRPC.RegisterFlags(fs)
	c.Gateway.RegisterFlags(fs)
	c.Redis.RegisterFlags(fs)
	fs.StringVar(&c.AdminAddr, "admin-addr", ":9464", "admin HTTP address (always plaintext, for scrapers and probes): /metrics, /healthz, /readyz")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go's runtime profiles on the admin address, under /debug/pprof/ (profiling; keep the admin port private)")
	c.ServiceAddrs = map[string]*string{}
	for _, s := range serviceTargets {
		c.ServiceAddrs[s] = fs.String(s+"-addr", "", "gRPC address of the "+s+" service (default: this process, when it runs it)")
	}
	fs.DurationVar(&c.ClientTimeout, "client-timeout", 5*time.Second, "deadline of calls to other services")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	c.Bus.registerFlags(fs)
	c.RateLimit.RegisterFlags(fs)
	fs.BoolVar(&c.Integration.Webhooks.AllowPrivate, "webhook-allow-private", false, "let webhook endpoints be loopback, private or link-local addresses (tests and development; crm dev turns it on)")
	fs.DurationVar(&c.Integration.Webhooks.Timeout, "webhook-timeout", 10*time.Second, "how long one webhook delivery attempt may take")
	fs.IntVar(&c.Integration.Webhooks.Concurrency, "webhook-concurrency", 16, "attempts in flight per webhook endpoint per process")
	fs.IntVar(&c.ImportBatchesInFlight, "import-batches-in-flight", importer.DefaultInFlight, "batches of 500 rows one file import writes at once: more is faster up to Redis' one core, and makes live calls wait longer behind the import")
}

// parse parses args, applies the environment and validates.
func (c *processConfig) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Apply(fs, "CRM", map[string]string{"redis-url": "REDIS_URL"}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.targetFlag != "" {
		targets, err := parseTargets(c.targetFlag)
		if err != nil {
			return err
		}
		c.Targets = targets
	}
	if c.dev && !c.runs(gatewayTarget) && !slices.ContainsFunc(serviceTargets, func(s string) bool {
		return s != "integration" && !c.runs(s) && *c.ServiceAddrs[s] == ""
	}) {
		c.Targets = append(c.Targets, gatewayTarget)
		slices.Sort(c.Targets)
	}
	return c.validate()
}

func (c *processConfig) validate() error {
	errs := []error{c.GRPC.Validate(), c.Redis.Validate(), c.Bus.validate(), c.RateLimit.Validate()}
	if c.ImportBatchesInFlight < 1 {
		errs = append(errs, errors.New("--import-batches-in-flight must be at least 1"))
	}
	if c.runs(gatewayTarget) {
		errs = append(errs, c.Gateway.Validate())
		for _, s := range serviceTargets {
			if s == "integration" && c.dev {
				continue
			}
			if !c.runs(s) && *c.ServiceAddrs[s] == "" {
				errs = append(errs, fmt.Errorf("the gateway needs --%s-addr: %s does not run in this process", s, s))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *processConfig) runs(target string) bool { return slices.Contains(c.Targets, target) }

func (c *processConfig) services() []string {
	var out []string
	for _, s := range serviceTargets {
		if c.runs(s) {
			out = append(out, s)
		}
	}
	return out
}

func parseTargets(v string) ([]string, error) {
	all := append(slices.Clone(serviceTargets), gatewayTarget)
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "all":
			out = append(out, all...)
		case slices.Contains(all, t):
			out = append(out, t)
		default:
			return nil, fmt.Errorf("unknown target %q (want all or %s)", t, strings.Join(all, ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
