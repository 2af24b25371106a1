package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/crmcycle/crm/pkg/auth"
)

// devTenant is the tenant `crm dev` creates and prints a key for.
const devTenant = "dev"

func dev(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg processConfig
	fs := flag.NewFlagSet("crm dev", flag.ContinueOnError)
	fs.SetOutput(stdout)
	// --target as crm serve's (default all): a benchmark runs the services without integration
	// to measure what recording and delivering every event costs a write; the gateway comes
	// along whenever the stage services it calls are there (cfg.dev).
	cfg.registerFlags(fs, true)
	cfg.dev = true
	demo := fs.Bool("demo", false, "seed the development tenant with a demo population through the APIs once up")
	publishedKey := fs.Bool("dev-key", false, "with a real Redis, register the development key of CRM_DEV_API_KEY too "+
		"(a published key: only on a Redis nobody else can reach)")
	fs.Lookup("webhook-allow-private").DefValue = "true"
	cfg.Integration.Webhooks.AllowPrivate = true // receivers on the developer's machine
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Development runs on whatever Redis it is given without the persistence warning; an evicting
	// Redis is still refused.
	cfg.Redis.AllowEphemeral = true
	embedded := cfg.Redis.URL == "" && os.Getenv("REDIS_URL") == "" && os.Getenv("CRM_REDIS_URL") == ""
	if embedded {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		cfg.Redis.URL = "redis://" + mr.Addr()
		fmt.Fprintln(stdout, "==> WARNING: no --redis-url given: running on the EMBEDDED in-memory store.")
		fmt.Fprintln(stdout, "==>          NOTHING IS PERSISTED; everything is gone when crm dev stops.")
	}
	if err := cfg.parse(fs, nil); err != nil {
		return err
	}
	secret := os.Getenv("CRM_DEV_API_KEY")
	if !embedded && !*publishedKey && secret != "" {
		fmt.Fprintf(stdout, "==> a real Redis: the development key of CRM_DEV_API_KEY is NOT registered (pass --dev-key to register it);\n")
		fmt.Fprintf(stdout, "==>   a new random key is made instead\n")
		secret = ""
	}
	key, err := devKey(ctx, cfg.Redis.URL, secret)
	if err != nil {
		return err
	}
	clock := &demoClock{}
	env := processEnv{Now: clock.Now}
	env.OnReady = func(b boundAddrs) {
		rest, grpcNote, curl := "http", " (plaintext)", "curl"
		if cfg.GRPC.TLS() {
			rest, grpcNote, curl = "https", " (TLS)", "curl --cacert <your CA>"
		}
		restAt := "none (the gateway needs marketing, sales, product and support)"
		if b.HTTP != "" {
			restAt = rest + "://" + dialable(b.HTTP)
		}
		fmt.Fprintf(stdout, "==> CRM Cycle is up: REST %s  gRPC %s%s  admin http://%s\n",
			restAt, dialable(b.GRPC), grpcNote, dialable(b.Admin))
		if !cfg.runs("integration") && *cfg.ServiceAddrs["integration"] == "" {
			fmt.Fprintln(stdout, "==> without the integration service: its routes (audit log, timelines, webhooks, API keys) answer 503")
		}
		fmt.Fprintf(stdout, "==> tenant %q, API key (admin scope): %s\n", devTenant, key)
		if b.HTTP != "" {
			fmt.Fprintf(stdout, "==> try: %s -H 'Authorization: Bearer %s' %s://%s/v1/leads\n", curl, key, rest, dialable(b.HTTP))
		}
		if *demo {
			fmt.Fprintln(stdout, "==> demo: seeding the tenant through the APIs...")
			go func() {
				creds := insecure.NewCredentials()
				if cfg.GRPC.TLS() {
					tlsCfg, err := cfg.GRPC.ClientTLS()
					if err != nil {
						fmt.Fprintf(stdout, "==> demo: %v\n", err)
						return
					}
					creds = credentials.NewTLS(tlsCfg)
				}
				conn, err := grpc.NewClient(dialable(b.GRPC), grpc.WithTransportCredentials(creds))
				if err == nil {
					defer conn.Close()
					err = seedDemo(ctx, conn, key, stdout, clock.set)
				}
				if err != nil && ctx.Err() == nil {
					fmt.Fprintf(stdout, "==> demo: %v\n", err)
				}
			}()
		}
	}
	return runProcess(ctx, cfg, env)
}

// demoClock is crm dev's clock: the real time, less an offset the demo seed sets to give the
// tenant months of history (orders, lifecycle moves, funnel periods); 0 otherwise.
type demoClock struct{ behind atomic.Int64 }

func (c *demoClock) Now() time.Time           { return time.Now().Add(-time.Duration(c.behind.Load())) }
func (c *demoClock) set(behind time.Duration) { c.behind.Store(int64(behind)) }

// devKey makes sure the development tenant exists and registers the development key: secret
// (CRM_DEV_API_KEY's, on the embedded store or with --dev-key), or a new random one.
func devKey(ctx context.Context, redisURL, secret string) (string, error) {
	rdb, err := openUntraced(ctx, redisURL)
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	store := auth.NewStore(rdb)
	if err := store.EnsureTenant(ctx, devTenant, "Development"); err != nil {
		return "", err
	}
	scopes := []string{auth.ScopeAdmin}
	if secret != "" {
		return secret, store.RegisterKey(ctx, devTenant, auth.NewKey{ID: "dev", Secret: secret}, scopes)
	}
	// A named key that expires, so that the keys of many runs on one Redis do not pile up as
	// nameless admin keys that work for ever.
	k, err := store.CreateKeyWith(ctx, devTenant, auth.KeySpec{
		DisplayName: "crm dev " + time.Now().UTC().Format(time.RFC3339), Scopes: scopes, ExpireTime: time.Now().Add(devKeyLifetime)})
	return k.Secret, err
}

// devKeyLifetime is how long the random admin key crm dev makes on a real Redis works.
const devKeyLifetime = 7 * 24 * time.Hour
