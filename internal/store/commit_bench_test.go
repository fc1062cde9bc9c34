package store_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ib/internal/block"
)

// BenchmarkCommitMillion commits a manifest of 1,000,000 entries (1,000
// folders of 1,000 one-block files) streamed from a pipe, and reports the
// time and the peak Go heap during the commit. Run with
//
//	go test -run '^$' -bench BenchmarkCommitMillion -benchtime 1x ./internal/store/
func BenchmarkCommitMillion(b *testing.B) {
	f := newStore(b)
	data := []byte("one shared block")
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.Level{})
	if err := f.st.PutBlock(context.Background(), c, strings.NewReader(string(wire))); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		pr, pw := io.Pipe()
		go func() {
			w := bufio.NewWriterSize(pw, 1<<20)
			fmt.Fprintf(w, `{"tags":{"n":"million"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`)
			for d := range 1000 {
				fmt.Fprintf(w, `,{"path":"d%04d","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`, d)
				for i := range 1000 {
					fmt.Fprintf(w, `,{"path":"d%04d/f%06d","type":"file","mode":420,"mtime":"2024-01-01T00:00:00.123456789Z","size":%d,"blocks":[{"cid":%q,"size":%d}]}`,
						d, i, len(data), c, len(data))
				}
			}
			w.WriteString("]}")
			w.Flush()
			pw.Close()
		}()
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}()
		start := time.Now()
		res, err := f.st.Commit(context.Background(), pr)
		close(stop)
		if err != nil || res.ID == 0 {
			b.Fatalf("commit: %+v %v", res, err)
		}
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.Logf("1,000,000 entries committed in %s, peak heap %d MiB, VmHWM %s", time.Since(start).Round(time.Millisecond), peak.Load()>>20, vmHWM())
	}
}

func vmHWM() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return "?"
}
