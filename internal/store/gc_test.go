package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/ibtest"
	"ib/internal/metadb/postgres"
	"ib/internal/metadb/sqlite"
	"ib/internal/pgtest"
	"ib/internal/store"
)

type fixture struct {
	st    *store.Store
	dir   string
	clock time.Time
}

func newStore(t testing.TB) *fixture {
	return newStoreOver(t, nil)
}

// newStoreOver is newStore with wrap, if not nil, between the store and
// its database, then always SQLite (a test that watches the store's calls).
func newStoreOver(t testing.TB, wrap func(*sqlite.DB) store.Meta) *fixture {
	t.Helper()
	dir := t.TempDir()
	var db store.Meta
	if os.Getenv("IB_BENCH_DB") == "postgres" && wrap == nil {
		// benchmarks on PostgreSQL: IB_BENCH_DB=postgres go test -bench …
		pdb, err := postgres.Open(context.Background(), pgtest.Start(t).NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pdb.Close() })
		db = pdb
	} else {
		sdb, err := sqlite.Open(context.Background(), filepath.Join(dir, "ib.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sdb.Close() })
		db = sdb
		if wrap != nil {
			db = wrap(sdb)
		}
	}
	local, err := blockstore.OpenLocal(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(context.Background(), db, local, local.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, dir: dir, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st.SetClock(func() time.Time { return f.clock })
	return f
}

func (f *fixture) put(t *testing.T, data []byte) string {
	t.Helper()
	c := block.Sum(data).String()
	wire, _ := block.Encode(data, block.Level{})
	if err := f.st.PutBlock(context.Background(), c, bytes.NewReader(wire), int64(len(wire))); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) commit(t *testing.T, c string, size int) store.CommitResult {
	t.Helper()
	body := `{"tags":{"n":"1"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},` +
		`{"path":"f","type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":` + strconv.Itoa(size) + `,"blocks":[{"cid":"` + c + `","size":` + strconv.Itoa(size) + `}]}]}`
	res, err := f.st.Commit(context.Background(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPresentThenCollectedMakesCommitAsk(t *testing.T) {
	f := newStore(t)
	data := ibtest.RandomBytes(300 << 10)
	c := f.put(t, data)
	missing, err := f.st.Missing(context.Background(), []string{c})
	if err != nil || len(missing) != 0 {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
	f.clock = f.clock.Add(time.Second)
	rep, err := f.st.GC(context.Background(), 0)
	if err != nil || rep.BlocksDeleted != 1 {
		t.Fatalf("GC: %+v %v", rep, err)
	}
	res := f.commit(t, c, len(data))
	if len(res.Missing) != 1 || res.Missing[0] != c {
		t.Fatalf("commit after the block was collected: %+v, want it missing", res)
	}
	f.put(t, data)
	if res := f.commit(t, c, len(data)); res.ID == 0 || len(res.Missing) != 0 {
		t.Fatalf("commit after re-upload: %+v", res)
	}
}

func TestGraceAndLastSeen(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	c := f.put(t, ibtest.RandomBytes(300<<10))
	f.clock = f.clock.Add(59 * time.Minute)
	if rep, _ := f.st.GC(ctx, time.Hour); rep.BlocksDeleted != 0 {
		t.Fatalf("collected a block uploaded 59 minutes ago with a 1 h grace")
	}
	f.st.Missing(ctx, []string{c}) // asked about: seen now
	f.clock = f.clock.Add(31 * time.Minute)
	if rep, _ := f.st.GC(ctx, time.Hour); rep.BlocksDeleted != 0 {
		t.Fatalf("collected a block asked about 31 minutes ago")
	}
	f.clock = f.clock.Add(30 * time.Minute)
	rep, err := f.st.GC(ctx, time.Hour)
	if err != nil || rep.BlocksDeleted != 1 || rep.BytesFreed < 300<<10 {
		t.Fatalf("GC after the grace: %+v %v", rep, err)
	}
	if _, _, err := f.st.OpenBlock(ctx, c); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("collected block still served: %v", err)
	}
}

func TestReferencedBlocksStay(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	data := ibtest.RandomBytes(300 << 10)
	c := f.put(t, data)
	res := f.commit(t, c, len(data))
	f.clock = f.clock.Add(48 * time.Hour)
	if rep, _ := f.st.GC(ctx, 0); rep.BlocksDeleted != 0 {
		t.Fatalf("collected a referenced block")
	}
	if _, err := f.st.Delete(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Backup(ctx, res.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted backup is still shown: %v", err)
	}
	rep, err := f.st.GC(ctx, 0)
	if err != nil || rep.BackupsPurged != 1 || rep.BlocksDeleted != 1 {
		t.Fatalf("GC after delete: %+v %v", rep, err)
	}
	if n := countObjects(t, f.dir); n != 0 {
		t.Fatalf("%d objects left", n)
	}
}

// Deleting and uploading one CID at the same moment must end with the
// block present whenever its row is.
func TestDeleteRacesReupload(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	data := ibtest.RandomBytes(300 << 10)
	wire, _ := block.Encode(data, block.Level{})
	c := block.Sum(data).String()
	for i := range 500 {
		f.clock = f.clock.Add(time.Second)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := f.st.PutBlock(ctx, c, bytes.NewReader(wire), int64(len(wire))); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := f.st.GC(ctx, 0); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		missing, err := f.st.Missing(ctx, []string{c})
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) == 0 { // a row: its bytes must be there
			rc, _, err := f.st.OpenBlock(ctx, c)
			if err != nil {
				t.Fatalf("round %d: row without bytes: %v", i, err)
			}
			_, err = block.Verify(rc, block.Sum(data), block.MaxSize, io.Discard)
			rc.Close()
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
	// and a final upload leaves it present
	f.put(t, data)
	if missing, _ := f.st.Missing(ctx, []string{c}); len(missing) != 0 {
		t.Fatal("block absent after the last upload")
	}
}

func TestOrphansAreSwept(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	local, _ := blockstore.OpenLocal(filepath.Join(f.dir, "blocks"))
	old := block.Sum([]byte("old orphan")).String()
	fresh := block.Sum([]byte("fresh orphan")).String()
	for _, k := range []string{old, fresh} {
		local.Put(ctx, k, strings.NewReader("bytes"), 5) // an object whose row never came (a crash)
	}
	info, _ := local.Stat(ctx, old)
	os.Chtimes(filepath.Join(f.dir, "blocks", old[8:10], old), info.ModTime.Add(-2*time.Hour), info.ModTime.Add(-2*time.Hour))
	f.clock = info.ModTime
	rep, err := f.st.GC(ctx, time.Hour)
	if err != nil || rep.OrphansDeleted != 1 {
		t.Fatalf("GC: %+v %v; want one orphan deleted", rep, err)
	}
	if _, err := local.Stat(ctx, old); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatal("the old orphan survived")
	}
	if _, err := local.Stat(ctx, fresh); err != nil {
		t.Fatal("an orphan younger than the grace was deleted")
	}
}

func countObjects(t *testing.T, dir string) int { return ibtest.CountObjects(dir) }
