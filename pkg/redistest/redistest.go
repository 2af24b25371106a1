// Package redistest runs a real redis-server for a test package:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// Tests then call redistest.URL or redistest.Client, and isolate themselves by using their own
// tenant (redistest.Tenant) rather than flushing. Where redis-server is not installed the package
// says so and falls back to the embedded miniredis, except under CI=true, where that fails the run.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

var url string

// Main starts the server, runs the package's tests and stops it.
func Main(m *testing.M) {
	stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	stopCluster()
	os.Exit(code)
}

// URL is the test server's redis:// URL.
func URL() string {
	if url == "" {
		panic("redistest: call redistest.Main from TestMain")
	}
	return url
}

// Client returns a client of the test server, closed when the test ends.
func Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	return clientOf(tb, URL())
}

// clientOf returns a client of the server at rawURL, closed when the test ends.
func clientOf(tb testing.TB, rawURL string) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Tenant returns a tenant id no other test uses.
func Tenant(tb testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

func start() (func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			return nil, errors.New("redis-server is not installed; CI needs it (apt-get install -y redis-server)")
		}
		fmt.Fprintln(os.Stderr, "redistest: redis-server not found; using embedded miniredis. Install redis-server to test against real Redis.")
		mr, err := miniredis.Run()
		if err != nil {
			return nil, err
		}
		url = "redis://" + mr.Addr()
		return mr.Close, nil
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	url = "redis://127.0.0.1:" + strconv.Itoa(port)
	if err := WaitReady(url, 10*time.Second); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady polls until the server at url answers PING or the timeout passes.
func WaitReady(rawURL string, timeout time.Duration) error {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis at %s did not answer: %w", strings.TrimPrefix(rawURL, "redis://"), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
