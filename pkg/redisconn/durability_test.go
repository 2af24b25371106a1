package redisconn_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/redisconn"
	"github.com/crmcycle/crm/pkg/redistest"
)

// TestCheckDurability runs the start-up check against real redis-servers configured each way.
func TestCheckDurability(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		allowEphemeral bool
		wantErr        string // "" for none
		wantWarn       string // "" for no warning
	}{
		{name: "AOF and noeviction", args: []string{"--appendonly", "yes", "--maxmemory-policy", "noeviction"}},
		{name: "an evicting policy is refused", args: []string{"--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"},
			wantErr: "maxmemory-policy is \"allkeys-lru\""},
		{name: "evicting volatile keys is refused too", args: []string{"--maxmemory-policy", "volatile-ttl"},
			allowEphemeral: true, wantErr: "volatile-ttl"},
		{name: "no persistence warns", wantWarn: "persists NOTHING"},
		{name: "no persistence, allowed", allowEphemeral: true},
		{name: "snapshots only warn", args: []string{"--save", "3600 1"}, wantWarn: "snapshots only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.NewServer(t, tt.args...)
			rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(srv.URL, "redis://")})
			t.Cleanup(func() { _ = rdb.Close() })
			var logs bytes.Buffer
			err := redisconn.CheckDurability(context.Background(), rdb,
				redisconn.Config{AllowEphemeral: tt.allowEphemeral}, slog.New(slog.NewTextHandler(&logs, nil)))
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if got := logs.String(); (got == "") != (tt.wantWarn == "") || !strings.Contains(got, tt.wantWarn) {
				t.Fatalf("logged %q, want a warning containing %q", got, tt.wantWarn)
			}
		})
	}
}

// TestCheckDurabilityOnCluster checks every master of the test cluster (which persists nothing).
func TestCheckDurabilityOnCluster(t *testing.T) {
	var logs bytes.Buffer
	err := redisconn.CheckDurability(context.Background(), redistest.ClusterClient(t), redisconn.Config{},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || strings.Count(logs.String(), "persists NOTHING") != 3 {
		t.Fatalf("got %v and %q, want a warning per master (3)", err, logs.String())
	}
}
