//go:build unix

package restore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
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

	// A dry run first: the same counts, nothing written or fetched.
	var lines []string
	counting := &countingAPI{API: api}
	plan, err := restore.Run(context.Background(), counting, res.ID, dest, restore.Options{DryRun: true,
		Plan: func(p restore.Planned) error { lines = append(lines, p.String()); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if plan.BlocksFetched != 6 || plan.BlocksReused != 17 || plan.Patched != 2 || plan.Kept != 1 || counting.blocks.Load() != 0 {
		t.Errorf("dry run: %+v, %d blocks asked", plan, counting.blocks.Load())
	}
	wantLines := []string{"~ db/000001.sst (458752 bytes from DEST, 65536 fetched)", "+ db/000002.sst (131072 bytes fetched)",
		"~ db/CURRENT (0 bytes from DEST, 16 fetched)", "~ freezer.cdat (655360 bytes from DEST, 131072 fetched)"}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("dry run lines:\n%s", strings.Join(lines, "\n"))
	}
	if fi, _ := os.Stat(filepath.Join(dest, "freezer.cdat")); fi.Size() != 10*bs {
		t.Error("the dry run wrote to DEST")
	}

	got, err := restore.Run(context.Background(), counting, res.ID, dest, restore.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)
	// Fetched: the freezer's 2 new blocks, the table's rewritten block,
	// CURRENT and the new table's 2 blocks; CURRENT (16 bytes) is its
	// inline CID's, not asked of the server.
	if got.BlocksFetched != 6 || got.BytesFetched != 5*bs+16 || counting.blocks.Load() != 5 {
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

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestRefreshInPlace: --in-place patches a stale file where it is (same
// inode, no copy beside it), never one with other hard links; an
// interrupted in-place refresh is completed by running it again;
// --verify-existing repairs a complete-looking file whose bytes rotted.
func TestRefreshInPlace(t *testing.T) {
	const bs = 64 << 10
	mt := time.Unix(1700000000, 0)
	api, src, first := backedUp(t, bs, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, "freezer.cdat"), ibtest.RandomBytes(16*bs), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "linked.sst"), ibtest.RandomBytes(4*bs), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "still.sst"), ibtest.RandomBytes(4*bs), 0o644, mt)
	})
	dest := filepath.Join(t.TempDir(), "node")
	if _, err := restore.Run(context.Background(), api, first, dest, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "checkpoint.sst")
	if err := os.Link(filepath.Join(dest, "linked.sst"), outside); err != nil {
		t.Fatal(err)
	}
	before := map[string]uint64{"freezer.cdat": inode(t, filepath.Join(dest, "freezer.cdat")), "linked.sst": inode(t, filepath.Join(dest, "linked.sst"))}
	keptOutside, _ := os.ReadFile(outside)

	// The source moves on: every block of the freezer and of linked.sst
	// changes.
	later := mt.Add(time.Hour)
	ibtest.WriteFile(t, filepath.Join(src, "freezer.cdat"), ibtest.RandomBytes(17*bs), 0o644, later)
	ibtest.WriteFile(t, filepath.Join(src, "linked.sst"), ibtest.RandomBytes(4*bs), 0o644, later)
	res, err := backup.Run(context.Background(), api, src, backup.Options{BlockSize: bs, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}

	// Interrupted after 5 blocks, then run again.
	ctx, cancel := context.WithCancel(context.Background())
	stop := &cancelling{API: api, cancel: cancel}
	stop.n.Store(5)
	if _, err := restore.Run(ctx, stop, res.ID, dest, restore.Options{Force: true, InPlace: true, Jobs: 1}); err == nil {
		t.Fatal("the cancelled refresh succeeded")
	}
	if _, err := os.Stat(filepath.Join(dest, restore.Marker)); err != nil {
		t.Fatalf("no marker after an interrupted refresh: %v", err)
	}
	got, err := restore.Run(context.Background(), api, res.ID, dest, restore.Options{Force: true, InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)
	if ino := inode(t, filepath.Join(dest, "freezer.cdat")); ino != before["freezer.cdat"] {
		t.Error("--in-place wrote the freezer file anew")
	}
	if ino := inode(t, filepath.Join(dest, "linked.sst")); ino == before["linked.sst"] {
		t.Error("a file with another hard link was patched in place")
	}
	if now, _ := os.ReadFile(outside); string(now) != string(keptOutside) {
		t.Error("the hard link outside DEST changed")
	}
	if got.BlocksReused < 4 { // the fifth request was the one cancelled
		t.Errorf("the rerun reused %d blocks: want at least the 4 the first run wrote", got.BlocksReused)
	}
	if ents, _ := filepath.Glob(filepath.Join(dest, ".*.ib-part")); len(ents) != 0 {
		t.Errorf("copies left beside the files: %v", ents)
	}

	// Rot one block of still.sst, keeping its size and mtime.
	p := filepath.Join(dest, "still.sst")
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("rot"), 2*bs+7)
	f.Close()
	os.Chtimes(p, mt, mt)
	if r, err := restore.Run(context.Background(), api, res.ID, dest, restore.Options{Force: true}); err != nil || r.BlocksFetched != 0 {
		t.Fatalf("plain refresh: %+v %v (it trusts size and mtime)", r, err)
	}
	r, err := restore.Run(context.Background(), api, res.ID, dest, restore.Options{Force: true, VerifyExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.BlocksFetched != 1 || r.Patched != 1 || r.Kept != 2 { // still.sst repaired; the others verified
		t.Errorf("--verify-existing: fetched %d, patched %d, kept %d: want 1, 1, 2", r.BlocksFetched, r.Patched, r.Kept)
	}
	ibtest.TreesEqual(t, src, dest, nil)
}
