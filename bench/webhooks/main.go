// Command webhookrecv is the receiving end of the webhook benchmark (bench/cases/webhooks.sh): an
// HTTP server that takes deliveries, measures each one's latency from the event's commit (the
// body's "timestamp", the envelope's occurred_time, stamped right before the outbox commit) to its
// arrival, dedupes on webhook-id, and once --expect distinct deliveries arrived (or --timeout
// passed) prints "name value" lines: webhook_delivered, webhook_p50_ms, webhook_p99_ms,
// webhook_max_ms.
//
//	webhookrecv --addr 127.0.0.1:PORT --expect 5000 --timeout 120s
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	expect := flag.Int("expect", 1000, "distinct deliveries to wait for")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()

	var mu sync.Mutex
	seen := map[string]bool{}
	var lat []float64
	done := make(chan struct{})
	http.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		if seen[id] {
			return
		}
		seen[id] = true
		lat = append(lat, float64(arrived.Sub(msg.Timestamp).Microseconds())/1000)
		if len(seen) == *expect {
			close(done)
		}
	})
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}()
	select {
	case <-done:
	case <-time.After(*timeout):
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("webhook_delivered %d\nwebhook_p50_ms %.1f\nwebhook_p99_ms %.1f\nwebhook_max_ms %.1f\n", len(seen), q(0.5), q(0.99), q(1))
}
