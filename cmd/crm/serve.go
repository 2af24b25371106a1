package main

import (
	"context"
	"flag"
	"io"
)

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg processConfig
	fs := flag.NewFlagSet("crm serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg.registerFlags(fs, true)
	if err := cfg.parse(fs, args); err != nil {
		return err
	}
	return runProcess(ctx, cfg, processEnv{})
}
