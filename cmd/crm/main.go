// Command crm is the one binary of CRM Cycle: `crm serve --target=...` runs any subset of the
// services and the gateway, `crm dev` runs everything on a laptop, `crm admin` manages tenants and
// API keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "crm:", err)
		os.Exit(exitCode(err))
	}
}

// exitError is an error that asks for an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process' exit status for a command's error: 0 for none, the exitError's code,
// 1 otherwise.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return 1
}

// gcPercent is crm's GOGC unless the environment sets one: the heap may grow to 5 times what is
// live before a collection, not twice. crm's live heap is small (tens of MB) and every call
// allocates, so at the default the collector took about a sixth of crm's CPU under load (bench
// profile), and its assists show in the tail latency. GOMEMLIMIT, which the deploy manifests set
// from the container's memory limit, still makes it collect sooner when memory runs short.
const gcPercent = 400

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

const usage = `usage: crm <command> [flags]

commands:
  serve    run services and/or the gateway: crm serve --target=marketing|sales|product|support|gateway|all
  dev      run everything in one process on the embedded store, with a printed API key
  admin    manage tenants and API keys: crm admin tenant create | crm admin key create
  import   import a CSV or NDJSON file: crm import FILE --kind leads|contacts|accounts|products
           (exit status 0: every row written; 1: the import failed or could not start; 2: it
           finished with failed rows, listed)
  version  print the version

Flags can also be set from the environment as CRM_<FLAG> (CRM_GRPC_ADDR, ...); REDIS_URL sets --redis-url.
Run "crm <command> -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout)
	case "dev":
		return dev(ctx, args[1:], stdout)
	case "admin":
		return admin(ctx, args[1:], stdout)
	case "import":
		return importFile(ctx, args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "crm", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stdout, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
