package flagenv_test

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/flagenv"
)

type config struct {
	RedisURL   string
	Partitions int
	Timeout    time.Duration
	Dev        bool
	GRPCAddr   string
}

// envNames are every variable a case may read; each case starts with all of them unset.
var envNames = []string{
	"CRM_REDIS_URL", "REDIS_URL", "CRM_PARTITIONS", "CRM_SHUTDOWN_TIMEOUT", "CRM_DEV", "CRM_GRPC_ADDR", "GRPC_ADDR",
}

func unsetAll(t *testing.T) {
	t.Helper()
	for _, n := range envNames {
		t.Setenv(n, "") // restores the original value when the test ends
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApply(t *testing.T) {
	defaults := config{RedisURL: "", Partitions: 16, Timeout: 15 * time.Second, Dev: false, GRPCAddr: ":9090"}
	aliases := map[string]string{"redis-url": "REDIS_URL"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string // substring of the error; "" for none
	}{
		{name: "nothing set keeps defaults", want: defaults},
		{
			name: "environment sets unset flags",
			env:  map[string]string{"CRM_REDIS_URL": "redis://r:6380", "CRM_PARTITIONS": "64", "CRM_SHUTDOWN_TIMEOUT": "3s", "CRM_DEV": "true"},
			want: config{RedisURL: "redis://r:6380", Partitions: 64, Timeout: 3 * time.Second, Dev: true, GRPCAddr: ":9090"},
		},
		{
			name: "command line wins over the environment",
			args: []string{"--redis-url=redis://flag:1", "--partitions=8"},
			env:  map[string]string{"CRM_REDIS_URL": "redis://env:2", "CRM_PARTITIONS": "64", "REDIS_URL": "redis://alias:3"},
			want: config{RedisURL: "redis://flag:1", Partitions: 8, Timeout: 15 * time.Second, GRPCAddr: ":9090"},
		},
		{
			name: "command line set to the default still wins",
			args: []string{"--partitions=16"},
			env:  map[string]string{"CRM_PARTITIONS": "64"},
			want: defaults,
		},
		{
			name: "alias when the CRM_ variable is absent",
			env:  map[string]string{"REDIS_URL": "redis://alias:3"},
			want: config{RedisURL: "redis://alias:3", Partitions: 16, Timeout: 15 * time.Second, GRPCAddr: ":9090"},
		},
		{
			name: "CRM_ variable wins over the alias",
			env:  map[string]string{"CRM_REDIS_URL": "redis://env:2", "REDIS_URL": "redis://alias:3"},
			want: config{RedisURL: "redis://env:2", Partitions: 16, Timeout: 15 * time.Second, GRPCAddr: ":9090"},
		},
		{
			name: "a flag without an alias ignores other variables",
			env:  map[string]string{"GRPC_ADDR": ":1"},
			want: defaults,
		},
		{
			name:    "bad integer",
			env:     map[string]string{"CRM_PARTITIONS": "many"},
			wantErr: "CRM_PARTITIONS",
		},
		{
			name:    "bad duration",
			env:     map[string]string{"CRM_SHUTDOWN_TIMEOUT": "15"},
			wantErr: "CRM_SHUTDOWN_TIMEOUT",
		},
		{
			name:    "bad bool",
			env:     map[string]string{"CRM_DEV": "maybe"},
			wantErr: "CRM_DEV",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetAll(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got config
			fs := flag.NewFlagSet("crm", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.StringVar(&got.RedisURL, "redis-url", "", "")
			fs.IntVar(&got.Partitions, "partitions", 16, "")
			fs.DurationVar(&got.Timeout, "shutdown-timeout", 15*time.Second, "")
			fs.BoolVar(&got.Dev, "dev", false, "")
			fs.StringVar(&got.GRPCAddr, "grpc-addr", ":9090", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}

			err := flagenv.Apply(fs, "CRM", aliases)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Apply: got %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: got %v, want no error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmptyVariableIsUnset(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	url := fs.String("redis-url", "default", "")
	port := fs.Int("port", 1, "")
	t.Setenv("CRM_REDIS_URL", "")
	t.Setenv("REDIS_URL", "redis://alias:6379")
	t.Setenv("CRM_PORT", "")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := flagenv.Apply(fs, "CRM", map[string]string{"redis-url": "REDIS_URL"}); err != nil {
		t.Fatalf("Apply with empty variables: %v", err)
	}
	if *url != "redis://alias:6379" || *port != 1 {
		t.Fatalf("got url %q port %d, want the alias and the default", *url, *port)
	}
}
