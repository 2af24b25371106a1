package rpc_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmcycle/crm/gateway/gatewaytest"
	"github.com/crmcycle/crm/pkg/servicetest"
)

// BenchmarkImportMemory streams a generated account CSV of BENCH_IMPORT_BYTES (100 MB by default)
// through the gateway to ImportAccounts, never holding the file (an io.Pipe writes it as the
// import reads it), and reports this process's peak RSS during the import (VmHWM, reset before
// it: the gateway and the sales service both run here; Redis is its own process) and the Go
// heap's high-water (live objects, sampled every 20 ms), with rows/s. It logs the curve: RSS, live
// heap and spans kept at 10, 25, 50, 75 and 100 % of the file, with a heap profile at each point
// into BENCH_HEAP_PROFILES (a folder) when set. Spans are made but not kept (a process exports
// them through a bounded queue); BENCH_IMPORT_KEEP_SPANS=1 keeps them in the suite's recorder, as
// the tests do, which grows with every call. Run it alone:
//
//	go test -run '^$' -bench ImportMemory -benchtime 1x -timeout 1h ./services/sales/rpc/
func BenchmarkImportMemory(b *testing.B) {
	size := int64(100 << 20)
	if v, err := strconv.ParseInt(os.Getenv("BENCH_IMPORT_BYTES"), 10, 64); err == nil && v > 0 {
		size = v
	}
	keepSpans := os.Getenv("BENCH_IMPORT_KEEP_SPANS") == "1"
	profiles := os.Getenv("BENCH_HEAP_PROFILES")
	sys := startSystem(b, func(o *servicetest.Options) { o.DropSpans = !keepSpans })
	_, key := sys.NewKey(b, "", importScopes...)
	for run := range b.N {
		body, w := io.Pipe()
		rows := make(chan int, 1)
		marks := []int64{10, 25, 50, 75, 100}
		reached := make(chan int64, len(marks)) // the writer's progress, in % of the file
		go func() {
			defer close(reached)
			var n int64
			var err error
			i, next := 0, 0
			for m := 0; err == nil && n < size; i++ {
				if i == 0 {
					m, err = io.WriteString(w, "displayName,domain,ownerId,industry\n")
				} else {
					m, err = fmt.Fprintf(w, "Account %d of run %d,acct-%d-%d.example.com,rep-%d,saas\n", i, run, run, i, i%7)
				}
				n += int64(m)
				// The pipe hands over a write only once the import read it: n is how far it is.
				for next < len(marks) && n*100 >= size*marks[next] {
					reached <- marks[next]
					next++
				}
			}
			_ = w.CloseWithError(err)
			rows <- i - 1
		}()
		curve := make(chan []string, 1)
		go func() {
			var points []string
			for pct := range reached {
				live := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
				metrics.Read(live)
				points = append(points, fmt.Sprintf("%d%%: RSS %d MiB, heap %d MiB, %d spans kept",
					pct, procStatus(b, "VmRSS")>>20, live[0].Value.Uint64()>>20, len(sys.Suite.Spans.Ended())))
				if profiles != "" {
					writeHeapProfile(b, filepath.Join(profiles, fmt.Sprintf("heap-%03d.pprof", pct)))
				}
			}
			curve <- points
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
		b.Logf("answered %d after %s: peak RSS %d MiB, Go heap high-water %d MiB", resp.StatusCode, elapsed.Round(time.Second), procStatus(b, "VmHWM")>>20, peakHeap>>20)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("import: %d %s %v", resp.StatusCode, answer, err)
		}
		_, meta := gatewaytest.DecodeOperation(b, answer)
		n := <-rows
		if meta.GetCreated() != int64(n) || meta.GetFailed() != 0 {
			b.Fatalf("import of %d rows: %v", n, meta)
		}
		rss := procStatus(b, "VmHWM")
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
		b.Logf("%d MiB file, %d rows in %s (spans kept: %v): peak RSS %d MiB, Go heap high-water %d MiB; curve: %s",
			size>>20, n, elapsed.Round(time.Second), keepSpans, rss>>20, peakHeap>>20, strings.Join(<-curve, "; "))
	}
}

// writeHeapProfile writes a heap profile of the live objects (after a collection) to file.
func writeHeapProfile(tb testing.TB, file string) {
	f, err := os.Create(file)
	if err != nil {
		tb.Error(err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		tb.Error(err)
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

// procStatus is a memory figure of this process's /proc/self/status (VmHWM: the resident
// high-water mark, VmRSS: resident now), in bytes.
func procStatus(tb testing.TB, field string) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Error(err)
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Error(err)
			}
			return kb << 10
		}
	}
	tb.Errorf("no %s in /proc/self/status", field)
	return 0
}
