package backup_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// TestRenamedFilesAreNotRead: a file moved to another path (same inode,
// size and mtime) takes its blocks from the previous backup, unread; a
// file written anew at a path with the same size and mtime is read.
// (Issue 17.)
func TestRenamedFilesAreNotRead(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(root, "snapshots", "100", "state.bin"), ibtest.RandomBytes(300_000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(root, "other.bin"), ibtest.RandomBytes(200_000), 0o644, mt)
	cache := &backup.ManifestCache{Dir: t.TempDir()}
	tags := manifest.Tags{"n": "mv"}
	first := run(t, api, root, tags, func(o *backup.Options) { o.Cache = cache })

	os.MkdirAll(filepath.Join(root, "archive"), 0o755)
	if err := os.Rename(filepath.Join(root, "snapshots", "100", "state.bin"), filepath.Join(root, "archive", "state-100.bin")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, "other.bin"))
	os.Remove(filepath.Join(root, "other.bin"))
	ibtest.WriteFile(t, filepath.Join(root, "moved-copy.bin"), data, 0o644, mt.Add(time.Second)) // a new file: read
	second := run(t, api, root, tags, func(o *backup.Options) { o.Cache = cache })
	// The copy is hashed; its blocks are on the server already (the same
	// bytes as other.bin), so it is not read again to upload.
	if second.Renamed != 1 || second.ReadBytes != 200_000 {
		t.Fatalf("renamed %d, read %d bytes: want the moved file unread and the copy hashed (200000)", second.Renamed, second.ReadBytes)
	}
	a, b := committed(t, api, first.ID), committed(t, api, second.ID)
	if !slices.Equal(a["snapshots/100/state.bin"].Blocks, b["archive/state-100.bin"].Blocks) {
		t.Fatal("the renamed file's blocks differ")
	}
	got, _ := os.ReadFile(filepath.Join(restored(t, api, second.ID), "archive", "state-100.bin"))
	want, _ := os.ReadFile(filepath.Join(root, "archive", "state-100.bin"))
	if string(got) != string(want) {
		t.Fatal("the renamed file restores different bytes")
	}
}
