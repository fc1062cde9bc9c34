package store_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/store"
)

// BenchmarkCommitMillion commits a manifest of 1,000,000 entries (1,000
// folders of 1,000 one-block files, every name distinct) streamed from a
// pipe, first to an empty server, then again and again with nothing changed
// (each commit's parent is the one before), and reports the time and the
// peak Go heap of each commit. Run with
//
//	go test -run '^$' -bench BenchmarkCommitMillion -benchtime 2x ./internal/store/
func BenchmarkCommitMillion(b *testing.B) {
	f := newStore(b)
	data := []byte("one shared block")
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.Level{})
	if err := f.st.PutBlock(context.Background(), c, strings.NewReader(string(wire)), int64(len(wire))); err != nil {
		b.Fatal(err)
	}
	commit := func(what string) {
		pr, pw := io.Pipe()
		go func() {
			w := bufio.NewWriterSize(pw, 1<<20)
			fmt.Fprintf(w, `{"tags":{"n":"million"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`)
			for d := range 1000 {
				fmt.Fprintf(w, `,{"path":"d%04d","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`, d)
				for i := range 1000 {
					fmt.Fprintf(w, `,{"path":"d%04d/f%07d","type":"file","mode":420,"mtime":"2024-01-01T00:00:00.123456789Z","size":%d,"blocks":[{"cid":%q,"size":%d}]}`,
						d, d*1000+i, len(data), c, len(data))
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
		var res store.CommitResult
		var err error
		// Labelled, so that a profile can tell the two kinds apart
		// (pprof -tagfocus 'commit=nothing changed').
		pprof.Do(context.Background(), pprof.Labels("commit", what), func(ctx context.Context) {
			res, err = f.st.Commit(ctx, pr)
		})
		close(stop)
		if err != nil || res.ID == 0 {
			b.Fatalf("commit: %+v %v", res, err)
		}
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.Logf("1,000,000 entries committed (%s) in %s, peak heap %d MiB, VmHWM %s", what, time.Since(start).Round(time.Millisecond), peak.Load()>>20, vmHWM())
	}
	b.StopTimer()
	commit("initial")
	b.StartTimer()
	for range b.N {
		commit("nothing changed")
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

// BenchmarkCommitDataset commits, again and again, the manifest of a tree
// shaped like the benchmark dataset's file count: 20,000 files of one
// distinct block each in 200 folders. This is the server's share of a
// no-change backup.
//
//	go test -run '^$' -bench BenchmarkCommitDataset ./internal/store/
func BenchmarkCommitDataset(b *testing.B) {
	f := newStore(b)
	const files = 20_000
	cids := make([]string, files)
	sizes := make([]int, files)
	var pack []byte
	for i := range files {
		data := fmt.Appendf(nil, "block number %d", i)
		cids[i], sizes[i] = block.Sum(data).String(), len(data)
		wire, _ := block.Encode(data, block.Level{})
		pack = block.AppendFrame(pack, cids[i], wire)
		if (i+1)%1000 == 0 {
			if _, err := f.st.PutPack(context.Background(), bytes.NewReader(pack)); err != nil {
				b.Fatal(err)
			}
			pack = pack[:0]
		}
	}
	var body bytes.Buffer
	body.WriteString(`{"tags":{"node":"bench"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},{"path":"small","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`)
	for d := range 200 {
		fmt.Fprintf(&body, `,{"path":"small/a%03d","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`, d)
		for i := range files / 200 {
			n := d*(files/200) + i
			fmt.Fprintf(&body, `,{"path":"small/a%03d/%06d.json","type":"file","mode":420,"mtime":"2024-01-01T00:00:00.123456789Z","size":%d,"uid":1000,"gid":1000,"blocks":[{"cid":%q,"size":%d}]}`,
				d, n, sizes[n], cids[n], sizes[n])
		}
	}
	body.WriteString("]}")
	b.ResetTimer()
	for b.Loop() {
		res, err := f.st.Commit(context.Background(), bytes.NewReader(body.Bytes()))
		if err != nil || res.ID == 0 || len(res.Missing) > 0 {
			b.Fatalf("commit: %+v %v", res, err)
		}
	}
}

// BenchmarkMissing: one missing-query of 10,000 CIDs (half stored) against
// a store of 200,000 blocks. Issue #8 asks for under 50 ms.
//
//	go test -run '^$' -bench BenchmarkMissing ./internal/store/
func BenchmarkMissing(b *testing.B) {
	f := newStore(b)
	have := storeBlocks(b, f, 200_000, "stored block %d", 40)
	ask := make([]string, 0, 10_000)
	for i := range 5_000 {
		ask = append(ask, have[i], block.Sum(fmt.Appendf(nil, "absent block %d", i)).String())
	}
	// fresh: every stored block was seen within the freshness window (the
	// daily case: a read only); all-stale: each found row is refreshed;
	// small: two CIDs at a time (a client that names blocks slowly asks
	// about each file on its own).
	for _, c := range []struct {
		name  string
		fresh time.Duration
		ask   []string
	}{{"fresh", time.Hour, ask}, {"all-stale", 0, ask}, {"small", time.Hour, ask[:2]}} {
		b.Run(c.name, func(b *testing.B) {
			f.st.SetSeenFresh(c.fresh)
			for b.Loop() {
				missing, err := f.st.Missing(context.Background(), c.ask)
				if err != nil || len(missing) != len(c.ask)/2 {
					b.Fatalf("missing: %d, %v", len(missing), err)
				}
			}
		})
	}
}

// BenchmarkCommitNewTagSet: a commit with no parent (a new tag set), so
// every block is looked up, of 20,000 files whose blocks are every tenth of
// 200,000 stored ones. It prices the commit's check of each block's size
// against its row.
//
//	go test -run '^$' -bench BenchmarkCommitNewTagSet ./internal/store/
func BenchmarkCommitNewTagSet(b *testing.B) {
	f := newStore(b)
	cids := storeBlocks(b, f, 200_000, "stored block number %d", 10)
	body := func(n int) []byte {
		var w bytes.Buffer
		fmt.Fprintf(&w, `{"tags":{"node":"bench-%d"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`, n)
		for i, c := range cids {
			size := len(fmt.Sprintf("stored block number %d", i*10))
			fmt.Fprintf(&w, `,{"path":"%06d","type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":%d,"blocks":[{"cid":%q,"size":%d}]}`, i, size, c, size)
		}
		w.WriteString("]}")
		return w.Bytes()
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		bd := body(n)
		b.StartTimer()
		res, err := f.st.Commit(context.Background(), bytes.NewReader(bd))
		if err != nil || res.ID == 0 || len(res.Missing) > 0 {
			b.Fatalf("commit: %+v %v", res, err)
		}
	}
}

// storeBlocks stores n small blocks whose bytes are format with their
// number, in packs of 1,000, and returns the CIDs of every one-in-every.
func storeBlocks(b *testing.B, f *fixture, n int, format string, every int) []string {
	var pack []byte
	var some []string
	for i := range n {
		data := fmt.Appendf(nil, format, i)
		c := block.Sum(data).String()
		wire, _ := block.Encode(data, block.Level{})
		pack = block.AppendFrame(pack, c, wire)
		if i%every == 0 {
			some = append(some, c)
		}
		if (i+1)%1000 == 0 {
			if _, err := f.st.PutPack(context.Background(), bytes.NewReader(pack)); err != nil {
				b.Fatal(err)
			}
			pack = pack[:0]
		}
	}
	return some
}
