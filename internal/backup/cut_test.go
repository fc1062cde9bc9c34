package backup_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ib/internal/backup"
	"ib/internal/chunk"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// cdc runs backups with the default, content-defined blocks.
func cdc(o *backup.Options) { o.BlockSize = 0 }

// checkCut fails unless an entry's blocks are each chunk.Min to chunk.Max
// bytes (the last may be shorter) and add up to its size.
func checkCut(t *testing.T, e *manifest.Entry) {
	t.Helper()
	var sum int64
	for i, b := range e.Blocks {
		if b.Size > chunk.Max || (b.Size < chunk.Min && i != len(e.Blocks)-1) {
			t.Errorf("%s: block %d of %d is %d bytes", e.Path, i, len(e.Blocks), b.Size)
		}
		sum += b.Size
	}
	if sum != e.Size {
		t.Errorf("%s: blocks add up to %d, size %d", e.Path, sum, e.Size)
	}
}

// TestContentDefinedBlocks: a large file is cut at content-defined
// boundaries, so bytes inserted into its middle give one or two new
// blocks; only those are uploaded, and both backups restore exactly.
// With fixed-size blocks every block after the insertion would be new.
func TestContentDefinedBlocks(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := t.TempDir()
	big := filepath.Join(root, "db", "store.pack")
	data := ibtest.RandomBytes(24 << 20)
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, big, data, 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(root, "small"), ibtest.RandomBytes(chunk.Min), 0o644, mt) // one block
	tags := manifest.Tags{"node": "cut"}

	first := run(t, api, root, tags, cdc)
	es := committed(t, api, first.ID)
	checkCut(t, es["db/store.pack"])
	if n := len(es["db/store.pack"].Blocks); n < 24<<20/chunk.Max || n > 24<<20/chunk.Min {
		t.Fatalf("24 MiB cut into %d blocks", n)
	}
	if n := len(es["small"].Blocks); n != 1 {
		t.Fatalf("a file of chunk.Min bytes has %d blocks, want 1", n)
	}

	inserted := slices.Concat(data[:11<<20], []byte("a few bytes inserted in the middle"), data[11<<20:])
	ibtest.WriteFile(t, big, inserted, 0o644, mt.Add(time.Hour))
	second := run(t, api, root, tags, cdc)
	after := committed(t, api, second.ID)["db/store.pack"]
	checkCut(t, after)
	if second.NewBlocks < 1 || second.NewBlocks > 2 || second.UploadedBytes > 2*chunk.Max {
		t.Fatalf("after an insertion: %d new blocks, %d bytes uploaded; want 1 or 2 blocks", second.NewBlocks, second.UploadedBytes)
	}
	for id, want := range map[int64][]byte{first.ID: data, second.ID: inserted} {
		got, err := os.ReadFile(filepath.Join(restored(t, api, id), "db", "store.pack"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("backup %d does not restore the file (%v)", id, err)
		}
	}

	// Changed in place and appended to: named from the previous backup's
	// blocks (chunk.CutKnown), the blocks are the ones a first backup of
	// the same bytes cuts, and the backup restores.
	patched := bytes.Clone(inserted)
	copy(patched[5<<20:], "rewritten in place")
	patched = append(patched, ibtest.RandomBytes(3<<20)...)
	ibtest.WriteFile(t, big, patched, 0o644, mt.Add(2*time.Hour))
	third := run(t, api, root, tags, cdc)
	fresh := run(t, api, root, manifest.Tags{"node": "cut-fresh"}, cdc)
	got, want := committed(t, api, third.ID)["db/store.pack"], committed(t, api, fresh.ID)["db/store.pack"]
	if !slices.Equal(got.Blocks, want.Blocks) {
		t.Fatalf("with the previous blocks known: %d blocks, a first backup cuts %d", len(got.Blocks), len(want.Blocks))
	}
	if third.NewBlocks < 2 || third.NewBlocks > 5 {
		t.Fatalf("after a change in place and an append: %d new blocks", third.NewBlocks)
	}
	if b, err := os.ReadFile(filepath.Join(restored(t, api, third.ID), "db", "store.pack")); err != nil || !bytes.Equal(b, patched) {
		t.Fatalf("backup %d does not restore the patched file (%v)", third.ID, err)
	}

	// Fixed-size blocks, asked for, are what they were.
	fixed := run(t, api, root, manifest.Tags{"node": "fixed"}, func(o *backup.Options) { o.BlockSize = 4 << 20 })
	if e := committed(t, api, fixed.ID)["db/store.pack"]; len(e.Blocks) != 7 || e.Blocks[0].Size != 4<<20 {
		t.Fatalf("--block-size 4MiB: %d blocks, the first of %d bytes", len(e.Blocks), e.Blocks[0].Size)
	}
}
