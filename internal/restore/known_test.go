//go:build unix

package restore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/restore"
)

// TestRefreshKnowsWhatItRestored: a refresh of a DEST this client restored
// whole takes a file whose size and mtime are still those of the backup
// restored there to hold that backup's blocks: it copies the ones the new
// backup shares and fetches the others, reading no stale byte to learn
// which. The trust is the one a kept file gets (size and mtime):
// bytes changed under an unchanged size and mtime stay, until
// --verify-existing hashes everything. (Issue 17.)
func TestRefreshKnowsWhatItRestored(t *testing.T) {
	const bs = 64 << 10
	mt := time.Unix(1700000000, 0)
	api, src, first := backedUp(t, bs, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, "db", "000001.sst"), ibtest.RandomBytes(8*bs), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "db", "CURRENT"), []byte("MANIFEST-000001\n"), 0o644, mt)
		ibtest.WriteFile(t, filepath.Join(s, "same"), ibtest.RandomBytes(3*bs), 0o644, mt)
	})
	state := t.TempDir()
	dest := filepath.Join(t.TempDir(), "node")
	if _, err := restore.Run(context.Background(), api, first, dest, restore.Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	// DEST's table gets other bytes in its first block, size and mtime
	// kept: what the refresh cannot see without hashing.
	sst := filepath.Join(dest, "db", "000001.sst")
	f, _ := os.OpenFile(sst, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte{'x'}, 100), 10)
	f.Close()
	os.Chtimes(sst, mt, mt)

	// The source: one block of the table rewritten, CURRENT changed.
	later := mt.Add(24 * time.Hour)
	f, _ = os.OpenFile(filepath.Join(src, "db", "000001.sst"), os.O_WRONLY, 0)
	f.WriteAt(ibtest.RandomBytes(100), 3*bs+10)
	f.Close()
	os.Chtimes(filepath.Join(src, "db", "000001.sst"), later, later)
	ibtest.WriteFile(t, filepath.Join(src, "db", "CURRENT"), []byte("MANIFEST-000002\n"), 0o644, later)
	second, err := backup.Run(context.Background(), api, src, backup.Options{BlockSize: bs, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}

	counting := &countingAPI{API: api}
	plan, err := restore.Run(context.Background(), counting, second.ID, dest, restore.Options{DryRun: true, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	got, err := restore.Run(context.Background(), counting, second.ID, dest, restore.Options{Force: true, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	// Fetched: the table's rewritten block and CURRENT (from its inline
	// CID: one block asked of the server); the first block, known to be
	// the same CID, copied unread.
	for _, r := range []restore.Result{plan, got} {
		if r.BlocksFetched != 2 || r.BlocksReused != 7 || r.Kept != 1 {
			t.Errorf("fetched %d, reused %d, kept %d: want 2, 7, 1", r.BlocksFetched, r.BlocksReused, r.Kept)
		}
	}
	if counting.blocks.Load() != 1 {
		t.Errorf("%d blocks asked of the server, want 1", counting.blocks.Load())
	}
	b, _ := os.ReadFile(sst)
	if !bytes.Equal(b[10:110], bytes.Repeat([]byte{'x'}, 100)) {
		t.Error("the first block was read and fetched again: the refresh did not use what it restored")
	}
	want, _ := os.ReadFile(filepath.Join(src, "db", "000001.sst"))
	if !bytes.Equal(b[bs:], want[bs:]) {
		t.Error("the table's other blocks differ from the source")
	}

	// --verify-existing hashes every file and repairs the block.
	if _, err := restore.Run(context.Background(), api, second.ID, dest, restore.Options{Force: true, StateDir: state, VerifyExisting: true}); err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)

	// The state names the backup restored last; a refresh whose old backup
	// is gone from the server hashes, as without a state.
	ibtest.WriteFile(t, filepath.Join(src, "db", "CURRENT"), []byte("MANIFEST-000003\n"), 0o644, later.Add(time.Hour))
	third, err := backup.Run(context.Background(), api, src, backup.Options{BlockSize: bs, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Delete(context.Background(), second.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Run(context.Background(), api, third.ID, dest, restore.Options{Force: true, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)
}

// TestRefreshFindsMovedBlocks: bytes inserted into a large file move the
// content-defined blocks after them without changing them; a refresh of
// a DEST restored by this client copies those from where DEST's file has
// them and fetches only the block around the insertion. A dry run plans
// the same; --in-place (which could overwrite a block before moving it)
// takes only blocks at their own offsets.
func TestRefreshFindsMovedBlocks(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	data := ibtest.RandomBytes(24 << 20)
	api, src, first := backedUp(t, 0, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, "store.pack"), data, 0o644, mt)
	})
	state := t.TempDir()
	dest := filepath.Join(t.TempDir(), "node")
	if _, err := restore.Run(context.Background(), api, first, dest, restore.Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	inserted := append(append(bytes.Clone(data[:5<<20]), []byte("inserted near the start")...), data[5<<20:]...)
	ibtest.WriteFile(t, filepath.Join(src, "store.pack"), inserted, 0o644, mt.Add(time.Hour))
	second, err := backup.Run(context.Background(), api, src, backup.Options{IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	if second.NewBlocks < 1 || second.NewBlocks > 2 || second.Blocks < 6 {
		t.Fatalf("backup after the insertion: %d of %d blocks new, want 1 or 2", second.NewBlocks, second.Blocks)
	}
	plan, err := restore.Run(context.Background(), api, second.ID, dest, restore.Options{DryRun: true, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingAPI{API: api}
	got, err := restore.Run(context.Background(), counting, second.ID, dest, restore.Options{Force: true, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	ibtest.TreesEqual(t, src, dest, nil)
	for _, r := range []restore.Result{plan, got} {
		if r.BlocksFetched != int64(second.NewBlocks) || r.BlocksReused != int64(second.Blocks-second.NewBlocks) {
			t.Errorf("fetched %d, reused %d: want the %d new blocks fetched and the %d others copied", r.BlocksFetched, r.BlocksReused, second.NewBlocks, second.Blocks-second.NewBlocks)
		}
	}
	if n := counting.blocks.Load(); n != int64(second.NewBlocks) {
		t.Errorf("%d blocks asked of the server, want %d", n, second.NewBlocks)
	}

	// Back to the first backup, in place: only the blocks before the
	// insertion are at their own offsets.
	inPlace, err := restore.Run(context.Background(), api, first, dest, restore.Options{Force: true, InPlace: true, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "store.pack")); !bytes.Equal(got, data) {
		t.Fatal("the in-place refresh did not restore the first backup")
	}
	if inPlace.BlocksReused == 0 || inPlace.BlocksReused >= int64(second.Blocks-second.NewBlocks) {
		t.Errorf("in place: %d blocks reused, want those before the insertion only", inPlace.BlocksReused)
	}
}
