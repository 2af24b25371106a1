package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// CPU is the CPU time the redis-server behind rdb has used so far (INFO cpu: user and system, all
// its threads). A benchmark reports the difference over its loop per op, so that a script's cost
// inside Redis is measured where Go's own timer sees only the round trip.
func CPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_user" || name == "used_cpu_sys") {
			s, err := strconv.ParseFloat(value, 64)
			if err != nil {
				tb.Fatalf("INFO cpu: %s: %v", line, err)
			}
			total += s
		}
	}
	return time.Duration(total * float64(time.Second))
}

// ReportCPU reports the CPU redis-server used since before, per op of b, as "redis-µs/op".
func ReportCPU(b *testing.B, rdb redis.UniversalClient, before time.Duration) {
	b.Helper()
	b.ReportMetric(float64(CPU(b, rdb)-before)/float64(time.Microsecond)/float64(b.N), "redis-µs/op")
}
