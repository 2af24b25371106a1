// Command webhookrecv is the receiving end of the webhook benchmark (bench/cases/webhooks.sh): an
// HTTP server that takes deliveries, measures each one's latency from the event's commit (the
// body's "timestamp", the envelope's occurred_time, stamped right before the outbox commit) to its
// arrival, dedupes on webhook-id, and once the expected number of distinct deliveries arrived (or
// --timeout passed) prints "name value" lines: webhook_expected, webhook_delivered, webhook_p50_ms,
// webhook_p99_ms, webhook_max_ms. The number is --expect, or, when the load generator cannot know
// it in advance (it may not reach its rate), what a POST /expect?n=N says once the load is over.
//
//	webhookrecv --addr 127.0.0.1:PORT --timeout 120s   # then: curl -X POST 'http://127.0.0.1:PORT/expect?n=5000'

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	expect := flag.Int("expect", 0, "distinct deliveries to wait for (0: as POST /expect?n=N says)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()

	var mu sync.Mutex
	seen := map[string]bool{}
	var lat []float64
	done := make(chan struct{})
	var finish sync.Once
	check := func() { // under mu
		if *expect > 0 && len(seen) >= *expect {
			finish.Do(func() { close(done) })
		}
	}
	http.HandleFunc("POST /expect", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "n: a count", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		*expect = n
		if n == 0 { // nothing to wait for
			finish.Do(func() { close(done) })
		}
		check()
	})
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
		check()
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
	fmt.Printf("webhook_expected %d\nwebhook_delivered %d\nwebhook_p50_ms %.1f\nwebhook_p99_ms %.1f\nwebhook_max_ms %.1f\n", *expect, len(seen), q(0.5), q(0.99), q(1))
}
