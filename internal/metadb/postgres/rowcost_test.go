package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/metadb/postgres"
	"ib/internal/pgtest"
	"ib/internal/store"
)

// BenchmarkRowCosts measures what docs/scale.md computes with: the engine
// on PostgreSQL records IB_BENCH_FILES (default 200,000) small files of
// one distinct block each, commits them as one backup, then again with
// nothing changed and with 1% changed, deletes one backup and collects
// garbage; it logs the time of each step and the bytes per row of every
// table with its indexes. Run with
//
//	go test -run '^$' -bench BenchmarkRowCosts -benchtime 1x ./internal/metadb/postgres/
func BenchmarkRowCosts(b *testing.B) {
	files := 200_000
	if s := os.Getenv("IB_BENCH_FILES"); s != "" {
		files, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	pg := pgtest.Start(b, "shared_buffers=1GB", "log_min_duration_statement=200")
	defer func() {
		if os.Getenv("IB_BENCH_PGLOG") != "" {
			l, _ := os.ReadFile(filepath.Join(pg.Dir, "postgres.log"))
			os.WriteFile(os.Getenv("IB_BENCH_PGLOG"), l, 0o644)
		}
	}()
	dsn := pg.NewDatabase(b)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	local, err := blockstore.OpenLocal(filepath.Join(b.TempDir(), "blocks"))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.New(ctx, db, local, local.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return clock })
	step := func(what string, n int, f func()) {
		start := time.Now()
		f()
		d := time.Since(start)
		// printed, not logged: a benchmark's log keeps ten lines
		fmt.Printf("%-36s %8.2f s  %7.1f µs per row\n", what, d.Seconds(), float64(d.Microseconds())/float64(n))
	}
	blockOf := func(i, gen int) []byte { return fmt.Appendf(nil, "file %d, version %d, a small block", i, gen) }
	// packs of ~1 MiB, made before the clock runs (encoding each block
	// alone is the slow part otherwise)
	packs := func(gen int, every int) [][]byte {
		var out [][]byte
		var pack []byte
		for i := range files {
			if i%every != 0 {
				continue
			}
			data := blockOf(i, gen)
			wire, _ := block.Encode(data, block.Level{})
			pack = block.AppendFrame(pack, block.Sum(data).String(), wire)
			if len(pack) > 1<<20 {
				out, pack = append(out, pack), nil
			}
		}
		return append(out, pack)
	}
	put := func(ps [][]byte) {
		for _, p := range ps {
			if _, err := st.PutPack(ctx, bytes.NewReader(p)); err != nil {
				b.Fatal(err)
			}
		}
	}
	manifest := func(changed func(i int) bool) []byte {
		var w bytes.Buffer
		w.WriteString(`{"tags":{"node":"rowcost"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`)
		for i := range files {
			if i%1000 == 0 {
				fmt.Fprintf(&w, `,{"path":"d%04d","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}`, i/1000)
			}
			gen := 0
			if changed(i) {
				gen = 1
			}
			data := blockOf(i, gen)
			fmt.Fprintf(&w, `,{"path":"d%04d/file-%07d.ldb","type":"file","mode":420,"mtime":"2024-01-01T00:00:0%dZ","size":%d,"blocks":[{"cid":%q,"size":%d}]}`,
				i/1000, i, gen, len(data), block.Sum(data).String(), len(data))
		}
		w.WriteString("]}")
		return w.Bytes()
	}
	commit := func(body []byte) int64 {
		clock = clock.Add(time.Hour)
		res, err := st.Commit(ctx, bytes.NewReader(body))
		if err != nil || len(res.Missing) > 0 {
			b.Fatalf("commit: %v, %d missing", err, len(res.Missing))
		}
		return res.ID
	}
	b.ResetTimer()
	for range b.N {
		p0, p1 := packs(0, 1), packs(1, 100)
		step("store blocks (packs of ~1 MiB)", files, func() { put(p0) })
		m0 := manifest(func(int) bool { return false })
		step("commit, new tag set", files, func() { commit(m0) })
		step("commit, nothing changed", files, func() { commit(m0) })
		put(p1)
		m1 := manifest(func(i int) bool { return i%100 == 0 })
		var third int64
		step("commit, 1% changed", files, func() { third = commit(m1) })
		sizes(b, dsn)
		clock = clock.Add(2 * time.Hour)
		gc := func(want int64) {
			rep, err := st.GC(ctx, time.Hour)
			if err != nil || rep.BlocksDeleted != want {
				b.Fatalf("GC deleted %d blocks (%v), want %d", rep.BlocksDeleted, err, want)
			}
		}
		step("GC, nothing to collect (per block)", files, func() { gc(0) })
		list, err := st.List(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, bk := range list {
			if bk.ID != third {
				if _, err := st.Delete(ctx, bk.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
		step("purge 2 backups, GC 1% (per entry)", 2*files, func() { gc(int64(files / 100)) })
		if _, err := st.Delete(ctx, third); err != nil {
			b.Fatal(err)
		}
		step("purge 1 backup, GC all (per block)", files, func() { gc(int64(files)) })
	}
}

// sizes logs each table's rows and bytes per row, heap and indexes.
func sizes(b *testing.B, dsn string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{"blocks", "entries", "refs", "names", "backups"} {
		var rows, heap, idx int64
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*), pg_table_size('%s'), pg_indexes_size('%s') FROM %s", t, t, t)).Scan(&rows, &heap, &idx); err != nil {
			b.Fatal(err)
		}
		if rows == 0 {
			continue
		}
		fmt.Printf("%-8s %9d rows  %6.1f B/row heap (with TOAST)  %6.1f B/row indexes\n", t, rows, float64(heap)/float64(rows), float64(idx)/float64(rows))
	}
}
