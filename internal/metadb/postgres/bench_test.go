package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"ib/internal/pgtest"
)

// BenchmarkMissing asks which of 10,000 CIDs (half stored, half not) are
// stored, against a blocks table of IB_BENCH_BLOCKS rows (default
// 10,000,000) made by the database itself (the first 20 queries warm
// the cache, then b.N are timed), and logs the table's bytes
// per row (heap, CID index, primary key) for docs/scale.md. Run with
//
//	go test -run '^$' -bench BenchmarkMissing -benchtime 20x ./internal/metadb/postgres/
func BenchmarkMissing(b *testing.B) {
	rows := int64(10_000_000)
	if s := os.Getenv("IB_BENCH_BLOCKS"); s != "" {
		rows, _ = strconv.ParseInt(s, 10, 64)
	}
	// A database server sized for its tables, as production ones are
	// (shared_buffers ~ 25% of RAM): the default 128 MB holds a tenth of
	// the CID index.
	pg := pgtest.Start(b, "shared_buffers=2GB")
	ctx := context.Background()
	db, err := Open(ctx, pg.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	// CIDv1 raw sha2-256 of the row number: the shape of every real CID.
	if _, err := db.pool.Exec(ctx, `INSERT INTO blocks (cid, size, wire_size, data, created_at, seen_at)
SELECT '\x01551220'::bytea || sha256(int8send(i)), 1048576, 1048000, NULL, 0, 0 FROM generate_series(1, $1) i`, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE blocks"); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d block rows made in %s", rows, time.Since(start).Round(time.Second))
	var heap, cidIdx, pkey int64
	if err := db.pool.QueryRow(ctx, `SELECT pg_relation_size('blocks'), pg_relation_size('blocks_cid_key'), pg_relation_size('blocks_pkey')`).Scan(&heap, &cidIdx, &pkey); err != nil {
		b.Fatal(err)
	}
	b.Logf("bytes per block row: heap %.1f, CID index %.1f, primary key %.1f", float64(heap)/float64(rows), float64(cidIdx)/float64(rows), float64(pkey)/float64(rows))
	cid := func(i int64) []byte {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i))
		h := sha256.Sum256(n[:])
		return append([]byte{0x01, 0x55, 0x12, 0x20}, h[:]...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ask := func() [][]byte {
		a := make([][]byte, 0, 10_000)
		for range 5_000 {
			a = append(a, cid(1+rng.Int64N(rows)), cid(rows+1+rng.Int64N(rows)))
		}
		return a
	}
	for range 20 {
		if _, err := db.Present(ctx, ask(), 0); err != nil {
			b.Fatal(err)
		}
	}
	// Sub-benchmarks, so that the table is made once whatever b.N: rows
	// seen recently (the daily case: nothing to refresh) and rows all
	// older than staleBefore (each refreshed).
	for _, c := range []struct {
		name        string
		staleBefore int64
	}{{"10k-CIDs-fresh", 0}, {"10k-CIDs-all-stale", math.MaxInt64}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				a := ask()
				b.StartTimer()
				present, err := db.Present(ctx, a, c.staleBefore)
				if err != nil {
					b.Fatal(err)
				}
				if len(present) < 4_990 || len(present) > 5_000 {
					b.Fatalf("%d of 5,000 stored CIDs found", len(present))
				}
			}
		})
	}
}
