package redistest

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one more redis-server of the test's own, for a test that needs a particular
// configuration or must stop and restart Redis: Start runs it on port with args added to the
// command line (for example "--maxmemory-policy", "allkeys-lru"), Stop kills it.
type Server struct {
	URL  string
	Port int
	args []string
	dir  string
	cmd  *exec.Cmd
}

// NewServer starts a redis-server persisting into a directory of the test (AOF off unless args
// say otherwise), stopped when the test ends. Without redis-server the test is skipped.
func NewServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	port, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{URL: "redis://127.0.0.1:" + strconv.Itoa(port), Port: port, args: args, dir: tb.TempDir()}
	s.Start(tb)
	tb.Cleanup(s.Stop)
	return s
}

// Start runs the server (again, after Stop) and waits until it answers.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir}, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	if err := WaitReady(s.URL, 10*time.Second); err != nil {
		s.Stop()
		tb.Fatal(err)
	}
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	return clientOf(tb, s.URL)
}

// Stop kills the server (as a crash would: no final save) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
