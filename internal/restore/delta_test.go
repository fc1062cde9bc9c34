//go:build unix

package restore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/ignore"
	"ib/internal/restore"
)

// TestRefreshFetchesOnlyWhatChanged: a restore over yesterday's restore
// takes every block whose bytes DEST already has at the same offset from
// DEST, and fetches only the others: an appended file its tail, a file
// with one block rewritten that block, a new file all of it. (Issue 17.)
func TestRefreshFetchesOnlyWhatChanged(t *testing.T) {
	const bs = 64 << 10
	mt := time.Unix(1700000000, 0)
	api, src, first := backedUp(t, bs, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, "freezer.cdat"), ibtest.RandomBytes(10*bs), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "db", "000001.sst"), ibtest.RandomBytes(8*bs), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "db", "CURRENT"), []byte("MANIFEST-000001\n"), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "same"), ibtest.RandomBytes(3*bs), 0o644, mt)
	})
	dest := filepath.Join(t.TempDir(), "node")
	if _, err := restore.Run(context.Background(), api, first, dest, restore.Options{}); err != nil {
		t.Fatal(err)
	}

	// A day later: the freezer grew by two blocks, one block of the table
	// was rewritten, CURRENT changed, a table is new.
	later := mt.Add(24 * time.Hour)
	f, _ := os.OpenFile(filepath.Join(src, "freezer.cdat"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(ibtest.RandomBytes(2 * bs))
	f.Close()
	os.Chtimes(filepath.Join(src, "freezer.cdat"), later, later)
	f, _ = os.OpenFile(filepath.Join(src, "db", "000001.sst"), os.O_WRONLY, 0)
	f.WriteAt(ibtest.RandomBytes(100), 3*bs+10)
	f.Close()
	os.Chtimes(filepath.Join(src, "db", "000001.sst"), later, later)
	ibtest.WriteFile(t, filepath.Join(src, "db", "CURRENT"), []byte("MANIFEST-000002\n"), 0o644, later)
	ibtest.WriteFile(t, filepath.Join(src, "db", "000002.sst"), ibtest.RandomBytes(2*bs), 0o644, later)
	res, err := backup.Run(context.Background(), api, src, backup.Options{BlockSize: bs, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}

	counting := &countingAPI{API: api}
	got, err := restore.Run(context.Background(), counting, res.ID, dest, restore.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)
	// Fetched: the freezer's 2 new blocks, the table's rewritten block,
	// CURRENT and the new table's 2 blocks.
	if got.BlocksFetched != 6 || got.BytesFetched != 5*bs+16 || counting.blocks.Load() != 6 {
		t.Errorf("fetched %d blocks, %d bytes (%d asked of the server): want the 6 blocks that changed", got.BlocksFetched, got.BytesFetched, counting.blocks.Load())
	}
	// Reused: the freezer's 10 old blocks, the table's 7 others.
	if got.BlocksReused != 17 || got.BytesReused != 17*bs || got.Patched != 2 {
		t.Errorf("reused %d blocks, %d bytes, %d files patched: want 17 blocks of 2 files", got.BlocksReused, got.BytesReused, got.Patched)
	}
	if got.Kept != 1 { // "same"
		t.Errorf("kept %d files untouched, want 1", got.Kept)
	}
}

// countingAPI counts the blocks asked of the server.
type countingAPI struct {
	restore.API
	blocks atomic.Int64
}

func (c *countingAPI) GetBlock(ctx context.Context, cid string) (io.ReadCloser, error) {
	c.blocks.Add(1)
	return c.API.GetBlock(ctx, cid)
}

func (c *countingAPI) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	c.blocks.Add(int64(len(cids)))
	return c.API.FetchBlocks(ctx, cids)
}

// TestRefreshDelete: --delete removes what DEST has and the backup does
// not, but never what the backup's own ignore files leave out, a
// protected path or a --keep pattern.
func TestRefreshDelete(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	api, _, id := backedUp(t, 0, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, ".ibignore"), []byte("keys/\n*.pid\n"), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "data", "a"), []byte("a"), 0o644, mt)
	})
	dest := t.TempDir()
	for p, c := range map[string]string{
		"keys/node_key.json":             "this host's key",
		"node.pid":                       "123",
		"data/stale.ldb":                 "stale",
		"old/x/y":                        "stale tree",
		"data/priv_validator_state.json": "newer state",
		"snapshots/s1":                   "kept by --keep",
	} {
		ibtest.WriteFile(t, filepath.Join(dest, p), []byte(c), 0o600, mt)
	}
	res, err := restore.Run(context.Background(), api, id, dest, restore.Options{Force: true, Delete: true,
		Protected: ignore.Excludes("test", []string{"data/priv_validator_state.json"}),
		Keep:      ignore.Excludes("--keep", []string{"/snapshots/"})})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"keys/node_key.json", "node.pid", "data/priv_validator_state.json", "snapshots/s1", "data/a", ".ibignore"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("%s: %v (it must stay)", p, err)
		}
	}
	for _, p := range []string{"data/stale.ldb", "old"} {
		if _, err := os.Lstat(filepath.Join(dest, p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there", p)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "keys/node_key.json")); string(got) != "this host's key" {
		t.Errorf("the ignored key was touched: %q", got)
	}
	if res.Deleted != 4 { // data/stale.ldb, old/x/y, old/x, old
		t.Errorf("deleted %d, want 4", res.Deleted)
	}
}
