package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/metadb/sqlite"
	"ib/internal/store"
)

// BenchmarkGC: garbage collection over 1,000,000 block rows and 10,000
// backups (50 references each, 2,000 of them deleted), reporting the run's
// time and the longest single write transaction. Run with
//
//	go test -run '^$' -bench BenchmarkGC -benchtime 1x ./internal/store/
func BenchmarkGC(b *testing.B) {
	const blocks, backups, refsPer, deleted = 1_000_000, 10_000, 50, 2_000
	dir := b.TempDir()
	path := filepath.Join(dir, "ib.db")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path) // schema
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	tx, _ := raw.Begin()
	insBlock, _ := tx.Prepare("INSERT INTO blocks (id, cid, size, wire_size, data, created_at, seen_at) VALUES (?, ?, 10, 10, x'00', 0, 0)")
	for i := 1; i <= blocks; i++ {
		c := block.Sum(fmt.Appendf(nil, "block %d", i))
		if _, err := insBlock.Exec(i, c.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	insBackup, _ := tx.Prepare("INSERT INTO backups (id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, deleting) VALUES (?, 0, '{}', 0, 0, 0, 0, 0, 0, ?)")
	insRef, _ := tx.Prepare("INSERT OR IGNORE INTO refs (block_id, backup_id) VALUES (?, ?)")
	for i := 1; i <= backups; i++ {
		del := 0
		if i <= deleted {
			del = 1
		}
		insBackup.Exec(i, del)
		for j := range refsPer {
			insRef.Exec((i*refsPer+j*7919)%blocks+1, i)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	raw.Close()
	b.Logf("built %d blocks, %d backups in %s", blocks, backups, time.Since(start).Round(time.Millisecond))

	db, err = sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	local, _ := blockstore.OpenLocal(filepath.Join(dir, "blocks"))
	st, _ := store.New(ctx, db, local, local.TempDir(), slog.New(slog.DiscardHandler))
	b.ResetTimer()
	for range b.N {
		rep, err := st.GC(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.BlocksDeleted), "blocks-deleted")
		b.ReportMetric(rep.LongestLockMS, "longest-lock-ms")
		b.Logf("GC: %+v", rep)
	}
}
