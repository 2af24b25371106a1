package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/crmcycle/crm/pkg/auth"
	"github.com/crmcycle/crm/pkg/flagenv"
	"github.com/crmcycle/crm/pkg/redisconn"
)

const adminUsage = `usage:
  crm admin tenant create [--id ID] --name NAME
  crm admin key create --tenant ID --scopes SCOPE[,SCOPE...]

Scopes: admin, or <service>.read / <service>.write for marketing, sales, product, support.
Both need --redis-url (or REDIS_URL).
`

func admin(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stdout, adminUsage)
		return errors.New("admin: what to manage?")
	}
	fs := flag.NewFlagSet("crm admin "+args[0]+" "+args[1], flag.ContinueOnError)
	fs.SetOutput(stdout)
	var redisCfg redisconn.Config
	redisCfg.RegisterFlags(fs)
	switch args[0] + " " + args[1] {
	case "tenant create":
		id := fs.String("id", "", "tenant id ([a-z0-9-], up to 32); random when empty")
		name := fs.String("name", "", "display name")
		store, done, err := adminStore(ctx, fs, args[2:], &redisCfg)
		if err != nil {
			return err
		}
		defer done()
		if *name == "" {
			return errors.New("admin: --name is required")
		}
		t, err := store.CreateTenant(ctx, *id, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s created (%s)\n", t.ID, t.DisplayName)
		return nil
	case "key create":
		tenant := fs.String("tenant", "", "tenant id")
		scopes := fs.String("scopes", "", "comma-separated scopes")
		store, done, err := adminStore(ctx, fs, args[2:], &redisCfg)
		if err != nil {
			return err
		}
		defer done()
		k, err := store.CreateKey(ctx, *tenant, strings.Split(*scopes, ","))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s for tenant %s with scopes %s\n", k.ID, *tenant, *scopes)
		fmt.Fprintf(stdout, "secret (shown once, store it now): %s\n", k.Secret)
		return nil
	}
	fmt.Fprint(stdout, adminUsage)
	return fmt.Errorf("admin: unknown command %q", strings.Join(args[:2], " "))
}

func adminStore(ctx context.Context, fs *flag.FlagSet, args []string, cfg *redisconn.Config) (*auth.Store, func(), error) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if err := flagenv.Apply(fs, "CRM", map[string]string{"redis-url": "REDIS_URL"}); err != nil {
		return nil, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	rdb, err := openUntraced(ctx, cfg.URL)
	if err != nil {
		return nil, nil, err
	}
	return auth.NewStore(rdb), func() { _ = rdb.Close() }, nil
}

// openUntraced opens Redis for one-off administrative work.
func openUntraced(ctx context.Context, url string) (redis.UniversalClient, error) {
	return redisconn.Open(ctx, redisconn.Config{URL: url}, tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
}
