package rpc_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmcycle/crm/gateway/gatewaytest"
)

// BenchmarkImportMemory streams a generated account CSV of BENCH_IMPORT_BYTES (100 MB by default)
// through the gateway to ImportAccounts, never holding the file (an io.Pipe writes it as the
// import reads it), and reports this process's peak RSS during the import (VmHWM, reset before
// it: the gateway and the sales service both run here; Redis is its own process) and the Go
// heap's high-water (live objects, sampled every 20 ms), with rows/s. Run it alone:
//
//	go test -run '^$' -bench ImportMemory -benchtime 1x -timeout 1h ./services/sales/rpc/
func BenchmarkImportMemory(b *testing.B) {
	size := int64(100 << 20)
	if v, err := strconv.ParseInt(os.Getenv("BENCH_IMPORT_BYTES"), 10, 64); err == nil && v > 0 {
		size = v
	}
	sys := startSystem(b)
	_, key := sys.NewKey(b, "", importScopes...)
	for run := range b.N {
		body, w := io.Pipe()
		rows := make(chan int, 1)
		go func() {
			var n int64
			var err error
			i := 0
			for m := 0; err == nil && n < size; i++ {
				if i == 0 {
					m, err = io.WriteString(w, "displayName,domain,ownerId,industry\n")
				} else {
					m, err = fmt.Fprintf(w, "Account %d of run %d,acct-%d-%d.example.com,rep-%d,saas\n", i, run, run, i, i%7)
				}
				n += int64(m)
			}
			_ = w.CloseWithError(err)
			rows <- i - 1
		}()
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("cannot reset the RSS high-water mark (%v): the figure includes the setup", err)
		}
		heap := sampleHeap(20 * time.Millisecond)
		t0 := time.Now()
		req, err := http.NewRequest(http.MethodPost, sys.URL+"/v1/accounts:import", body)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		elapsed := time.Since(t0)
		peakHeap := heap()
		b.Logf("answered %d after %s: peak RSS %d MiB, Go heap high-water %d MiB", resp.StatusCode, elapsed.Round(time.Second), vmHWM(b)>>20, peakHeap>>20)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("import: %d %s %v", resp.StatusCode, answer, err)
		}
		_, meta := gatewaytest.DecodeOperation(b, answer)
		n := <-rows
		if meta.GetCreated() != int64(n) || meta.GetFailed() != 0 {
			b.Fatalf("import of %d rows: %v", n, meta)
		}
		rss := vmHWM(b)
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
		b.Logf("%d MiB file, %d rows in %s: peak RSS %d MiB, Go heap high-water %d MiB", size>>20, n, elapsed.Round(time.Second), rss>>20, peakHeap>>20)
	}
}

// sampleHeap samples the Go heap's live objects until the returned func is called, which answers
// the highest.
func sampleHeap(every time.Duration) func() uint64 {
	var (
		mu   sync.Mutex
		peak uint64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// vmHWM is this process's resident high-water mark, in bytes.
func vmHWM(tb testing.TB) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}
