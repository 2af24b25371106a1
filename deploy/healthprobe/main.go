// Command healthprobe is the container HEALTHCHECK helper. The runtime image is distroless (no
// shell, no curl), so Docker and compose healthchecks exec this instead: it GETs one URL and exits
// 0 on a 2xx answer, 1 otherwise. Kubernetes does not need it; it probes natively.
//
// It imports only the standard library and is built outside the Go workspace (see
// deploy/Dockerfile), so it adds no module to go.work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// timeout stays under the compose healthcheck timeout so a hung endpoint reports a reason.
const timeout = 2 * time.Second

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "healthprobe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: healthprobe URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", args[0], resp.Status)
	}
	return nil
}
