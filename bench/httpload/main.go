// Command httpload is bench/run.sh's fallback REST load generator, used only when wrk is not
// installed and cannot be: c workers POST a lead with a new e-mail each to url for d, then it
// prints the same "WRKJSON {...}" line as bench/capture_lead.lua. It is its own module (not in
// go.work) so that it builds with the standard library alone: GOWORK=off go build.
package main

import (
	"bytes"
	"context"
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

type result struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	ErrorsConnect int64   `json:"errors_connect"`
	ErrorsRead    int64   `json:"errors_read"`
	ErrorsWrite   int64   `json:"errors_write"`
	ErrorsStatus  int64   `json:"errors_status"`
	ErrorsTimeout int64   `json:"errors_timeout"`
	P50US         int64   `json:"p50_us"`
	P90US         int64   `json:"p90_us"`
	P99US         int64   `json:"p99_us"`
	MaxUS         int64   `json:"max_us"`
	MeanUS        float64 `json:"mean_us"`
}

func main() {
	url := flag.String("url", "", "URL to POST to, e.g. http://127.0.0.1:8080/v1/leads")
	key := flag.String("key", "", "API key, sent as Authorization: Bearer KEY")
	conc := flag.Int("c", 50, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	run := flag.String("run", fmt.Sprint(time.Now().Unix()), "run id, part of every e-mail")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "httpload: -url is required")
		os.Exit(2)
	}

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()

	var (
		mu        sync.Mutex
		res       result
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := range *conc {
		wg.Go(func() {
			var local result
			var lat []time.Duration
			for n := 1; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"email":"h%s-%d-%d@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}`, *run, w, n)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewBufferString(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+*key)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						break // the run ended during the call: not counted, as wrk does
					}
					local.ErrorsConnect++
					continue
				}
				nb, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				elapsed := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					local.ErrorsRead++
					continue
				}
				local.Requests++
				local.Bytes += nb
				if resp.StatusCode > 399 {
					local.ErrorsStatus++
				}
				lat = append(lat, elapsed)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Requests += local.Requests
			res.Bytes += local.Bytes
			res.ErrorsConnect += local.ErrorsConnect
			res.ErrorsRead += local.ErrorsRead
			res.ErrorsStatus += local.ErrorsStatus
			latencies = append(latencies, lat...)
		})
	}
	wg.Wait()
	res.DurationUS = time.Since(start).Microseconds()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		pct := func(p float64) int64 { return latencies[int(p*float64(len(latencies)-1))].Microseconds() }
		res.P50US, res.P90US, res.P99US = pct(0.50), pct(0.90), pct(0.99)
		res.MaxUS = latencies[len(latencies)-1].Microseconds()
		var sum time.Duration
		for _, l := range latencies {
			sum += l
		}
		res.MeanUS = float64(sum.Microseconds()) / float64(len(latencies))
	}
	out, _ := json.Marshal(res)
	fmt.Printf("WRKJSON %s\n", out)
}
