package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	"ib/internal/block"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/restore"
)

// committed reads back the entries of a committed backup by path.
func committed(t *testing.T, api *apiclient.Client, id int64) map[string]*manifest.Entry {
	t.Helper()
	rc, err := api.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*manifest.Entry{}
	r := manifest.NewReader(rc, nil)
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[e.Path] = e
	}
}

func restored(t *testing.T, api *apiclient.Client, id int64) string {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "r")
	if _, err := restore.Run(context.Background(), api, id, dest, restore.Options{}); err != nil {
		t.Fatalf("restore %d: %v", id, err)
	}
	return dest
}

func appendTo(t *testing.T, path string, data []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Error(err)
		return
	}
	f.Write(data)
	f.Close()
}

// TestAppendedWhileReadIsReadAgain: a log appended while the backup reads
// it is read again; the backup stores the log as the second read saw it,
// consistent, unmarked.
func TestAppendedWhileReadIsReadAgain(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := t.TempDir()
	wal := filepath.Join(root, "wal.log")
	ibtest.WriteFile(t, wal, bytes.Repeat([]byte("entry\n"), 50_000), 0o644, time.Unix(1700000000, 0))
	var reads atomic.Int64
	backup.SetAfterRead(func(abs string) {
		if abs == wal && reads.Add(1) == 1 {
			appendTo(t, wal, []byte("appended during the read\n"))
		}
	})
	t.Cleanup(func() { backup.SetAfterRead(nil) })
	res := run(t, api, root, manifest.Tags{"n": "wal"}, nil)
	if reads.Load() != 2 || res.Rereads != 1 || res.ChangedCount != 0 {
		t.Fatalf("reads %d, rereads %d, changed %d: want one re-read and nothing marked", reads.Load(), res.Rereads, res.ChangedCount)
	}
	e := committed(t, api, res.ID)["wal.log"]
	want, _ := os.ReadFile(wal)
	if e.Size != int64(len(want)) || e.ChangedDuringRead {
		t.Fatalf("entry size %d changed %v, file now %d bytes", e.Size, e.ChangedDuringRead, len(want))
	}
	got, err := os.ReadFile(filepath.Join(restored(t, api, res.ID), "wal.log"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored log differs (%v)", err)
	}
}

// TestNeverSettles: a file that changes on every read is read 1+3 times,
// stored as last read and marked; the rest of the backup is whole. With
// FailOnChange nothing is committed.
func TestNeverSettles(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	log := filepath.Join(root, "LOG")
	ibtest.WriteFile(t, log, []byte("start\n"), 0o644, time.Unix(1700000000, 0))
	var reads atomic.Int64
	backup.SetAfterRead(func(abs string) {
		if abs == log {
			reads.Add(1)
			appendTo(t, log, []byte("line\n"))
		}
	})
	t.Cleanup(func() { backup.SetAfterRead(nil) })

	_, err := backup.Run(context.Background(), api, root, backup.Options{Tags: manifest.Tags{"n": "log"}, BlockSize: 64 << 10,
		IsNotFound: apiclient.IsNotFound, FailOnChange: true})
	if !errors.Is(err, backup.ErrChanged) || !strings.Contains(err.Error(), "LOG") {
		t.Fatalf("FailOnChange: %v, want ErrChanged naming LOG", err)
	}
	if list, _ := api.List(context.Background(), nil); len(list) != 0 {
		t.Fatalf("a refused backup was committed: %v", list)
	}

	reads.Store(0)
	before, _ := os.Stat(log)
	res := run(t, api, root, manifest.Tags{"n": "log"}, nil)
	if reads.Load() != 4 || res.ChangedCount != 1 || len(res.Changed) != 1 || res.Changed[0] != "LOG" {
		t.Fatalf("reads %d, changed %d %v: want 4 reads and LOG marked", reads.Load(), res.ChangedCount, res.Changed)
	}
	es := committed(t, api, res.ID)
	if !es["LOG"].ChangedDuringRead || es["d/a"].ChangedDuringRead {
		t.Fatalf("flags: LOG %v, d/a %v", es["LOG"].ChangedDuringRead, es["d/a"].ChangedDuringRead)
	}
	// Three lines appended after the first three reads: what the fourth
	// read saw.
	if want := before.Size() + int64(3*len("line\n")); es["LOG"].Size != want {
		t.Fatalf("LOG stored with %d bytes, want %d (as last read)", es["LOG"].Size, want)
	}

	// The next backup reads a marked file again even with the same size
	// and mtime.
	backup.SetAfterRead(nil)
	fi, _ := os.Stat(log)
	os.Truncate(log, es["LOG"].Size)
	os.Chtimes(log, fi.ModTime(), time.Unix(0, es["LOG"].MTime.UnixNano()))
	next := run(t, api, root, manifest.Tags{"n": "log"}, nil)
	if e := committed(t, api, next.ID)["LOG"]; e.ChangedDuringRead || next.ReusedFiles != 4 {
		t.Fatalf("next backup: LOG marked %v, %d files reused (want the 4 others, LOG read again)", e.ChangedDuringRead, next.ReusedFiles)
	}
}

// TestFileChangedAfterHashing: a file rewritten between hashing and
// uploading (same size) no longer fails the backup: the upload sets it
// aside, it is read again after the last upload, and the backup stores
// the new content, whole and consistent.
func TestFileChangedAfterHashing(t *testing.T) {
	srv := ibtest.StartServer(t)
	for _, bs := range []int64{4 << 20, 0} { // fixed, and content-defined blocks
		t.Run(fmt.Sprintf("block size %d", bs), func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "big")
			ibtest.WriteFile(t, p, ibtest.RandomBytes(6<<20), 0o644, time.Unix(1700000000, 0))
			ibtest.WriteFile(t, filepath.Join(root, "small"), []byte("small file"), 0o644, time.Unix(1700000000, 0))
			api := &changingAPI{Client: client(t, srv), change: rewriteInPlace(p)}
			opts := backup.Options{Tags: manifest.Tags{"node": "x"}, BlockSize: bs, IsNotFound: apiclient.IsNotFound}
			res, err := backup.Run(context.Background(), api, root, opts)
			if err != nil {
				t.Fatalf("backup of a file changed after hashing: %v", err)
			}
			if res.ChangedCount != 0 || res.Files != 2 {
				t.Fatalf("result %+v: want 2 files, none marked", res)
			}
			if bs == 0 {
				checkCut(t, committed(t, api.Client, res.ID)["big"])
			}
			want, _ := os.ReadFile(p)
			got, err := os.ReadFile(filepath.Join(restored(t, api.Client, res.ID), "big"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("restored file is not the rewritten one (%v)", err)
			}
		})
	}
}

// TestVanishedFilesAreLeftOut: a file removed between the walk and its
// read (a compaction deleting what it merged) is left out, counted, and
// the backup goes on; one removed before its upload is left out too.
func TestVanishedFilesAreLeftOut(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	gone := filepath.Join(root, "000123.ldb")
	ibtest.WriteFile(t, gone, ibtest.RandomBytes(5000), 0o644, time.Unix(1700000000, 0))
	backup.SetBeforeOpen(func(abs string) {
		if abs == gone {
			os.Remove(gone)
		}
	})
	t.Cleanup(func() { backup.SetBeforeOpen(nil) })
	res := run(t, api, root, manifest.Tags{"n": "v"}, nil)
	es := committed(t, api, res.ID)
	if _, ok := es["000123.ldb"]; ok || res.Vanished != 1 || res.Files != 4 {
		t.Fatalf("vanished %d, files %d, entry kept %v: want it left out", res.Vanished, res.Files, ok)
	}
	if got, err := os.ReadFile(filepath.Join(restored(t, api, res.ID), "d", "c")); err != nil || len(got) != 70_000 {
		t.Fatalf("the rest of the backup: %d bytes, %v", len(got), err)
	}
}

// TestSwappedFilesAreLeftOut: a file replaced by a symlink between the
// walk and its read is left out (the read does not follow the link out of
// the folder: nothing of its target is uploaded), and so is one replaced by
// a FIFO (the read does not wait for a writer that never comes).
func TestSwappedFilesAreLeftOut(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	secret := ibtest.RandomBytes(50_000)
	outside := filepath.Join(t.TempDir(), "secret")
	ibtest.WriteFile(t, outside, secret, 0o600, time.Unix(1700000000, 0))
	link, fifo := filepath.Join(root, "link-me"), filepath.Join(root, "fifo-me")
	for _, p := range []string{link, fifo} {
		ibtest.WriteFile(t, p, ibtest.RandomBytes(50_000), 0o644, time.Unix(1700000000, 0))
	}
	backup.SetBeforeOpen(func(abs string) {
		switch abs {
		case link:
			os.Remove(link)
			if err := os.Symlink(outside, link); err != nil {
				t.Error(err)
			}
		case fifo:
			os.Remove(fifo)
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Error(err)
			}
		}
	})
	t.Cleanup(func() { backup.SetBeforeOpen(nil) })
	done := make(chan backup.Result, 1)
	go func() { done <- run(t, api, root, manifest.Tags{"n": "swapped"}, nil) }()
	var res backup.Result
	select {
	case res = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the backup hangs on a file swapped for a FIFO")
	}
	es := committed(t, api, res.ID)
	_, hasLink := es["link-me"]
	_, hasFIFO := es["fifo-me"]
	if hasLink || hasFIFO || res.Vanished != 2 || res.Files != 4 {
		t.Fatalf("vanished %d, files %d, link kept %v, fifo kept %v: want both left out", res.Vanished, res.Files, hasLink, hasFIFO)
	}
	want := block.Sum(secret).String() // one block: 50,000 bytes < 64 KiB
	if missing, err := api.Missing(context.Background(), []string{want}); err != nil || len(missing) != 1 {
		t.Fatalf("the symlink's target was read and uploaded (missing %v, %v)", missing, err)
	}
}

// TestSwappedBeforeUpload: a small file (uploaded in a pack, read again by
// range) that is replaced by a FIFO after it was hashed is set aside, found
// gone when read again, and left out; the backup neither hangs nor fails.
func TestSwappedBeforeUpload(t *testing.T) {
	srv := ibtest.StartServer(t)
	root := tree(t)
	p := filepath.Join(root, "swapped")
	ibtest.WriteFile(t, p, ibtest.RandomBytes(50_000), 0o644, time.Unix(1700000000, 0))
	api := &changingAPI{Client: client(t, srv), change: swapForFIFO(p)}
	done := make(chan error, 1)
	var res backup.Result
	go func() {
		var err error
		res, err = backup.Run(context.Background(), api, root, backup.Options{Tags: manifest.Tags{"n": "fifo"}, BlockSize: 64 << 10, IsNotFound: apiclient.IsNotFound})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("backup with a file swapped for a FIFO before its upload: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the backup hangs on a file swapped for a FIFO before its upload")
	}
	if _, kept := committed(t, api.Client, res.ID)["swapped"]; kept || res.Vanished != 1 || res.Files != 4 {
		t.Fatalf("vanished %d, files %d, kept %v: want the swapped file left out", res.Vanished, res.Files, kept)
	}
}

// TestHardLinksStoredOnce: the names of one inode are read and uploaded
// once; later names are hardlink entries that restore as links.
func TestHardLinksStoredOnce(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := t.TempDir()
	data := ibtest.RandomBytes(1 << 20)
	ibtest.WriteFile(t, filepath.Join(root, "db", "000001.sst"), data, 0o644, time.Unix(1700000000, 0))
	os.MkdirAll(filepath.Join(root, "checkpoint"), 0o755)
	if err := os.Link(filepath.Join(root, "db", "000001.sst"), filepath.Join(root, "checkpoint", "000001.sst")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "db", "000001.sst"), filepath.Join(root, "db", "z-link")); err != nil {
		t.Fatal(err)
	}
	res := run(t, api, root, manifest.Tags{"n": "links"}, nil)
	// One read to hash, one to upload: of one name only.
	if res.ReadBytes != 2*int64(len(data)) || res.UploadedBytes > int64(len(data))+4096 || res.Hardlinks != 2 || res.Files != 3 {
		t.Fatalf("read %d, uploaded %d, hardlinks %d, files %d: want two reads of %d bytes and 2 links",
			res.ReadBytes, res.UploadedBytes, res.Hardlinks, res.Files, len(data))
	}
	es := committed(t, api, res.ID)
	// walk order: checkpoint/ comes before db/
	first := es["checkpoint/000001.sst"]
	for _, p := range []string{"db/000001.sst", "db/z-link"} {
		if e := es[p]; e.Type != manifest.TypeHardlink || e.Target != "checkpoint/000001.sst" || e.Size != first.Size {
			t.Fatalf("%s: %+v", p, e)
		}
	}
	dest := restored(t, api, res.ID)
	var inos []uint64
	for _, p := range []string{"checkpoint/000001.sst", "db/000001.sst", "db/z-link"} {
		fi, err := os.Stat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, fi.Sys().(*syscall.Stat_t).Ino)
		if fi.Sys().(*syscall.Stat_t).Nlink != 3 {
			t.Fatalf("%s has %d links after restore, want 3", p, fi.Sys().(*syscall.Stat_t).Nlink)
		}
	}
	if inos[0] != inos[1] || inos[1] != inos[2] {
		t.Fatalf("restored names are not one inode: %v", inos)
	}
	got, _ := os.ReadFile(filepath.Join(dest, "db", "z-link"))
	if !bytes.Equal(got, data) {
		t.Fatal("restored content differs")
	}
	// Restoring db/ alone: the first name of their inode is outside it, so
	// each is written as a file of its own.
	sub := filepath.Join(t.TempDir(), "sub")
	if _, err := restore.Run(context.Background(), api, res.ID, sub, restore.Options{Sub: "db"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"db/000001.sst", "db/z-link"} {
		got, err := os.ReadFile(filepath.Join(sub, p))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s restored with --path db: %d bytes, %v", p, len(got), err)
		}
	}
}
