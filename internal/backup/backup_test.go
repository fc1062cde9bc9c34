package backup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/block"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/progress"
)

func client(t *testing.T, srv *ibtest.Server) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(srv.URL, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, api backup.API, root string, tags manifest.Tags, mod func(*backup.Options)) backup.Result {
	t.Helper()
	opts := backup.Options{Tags: tags, BlockSize: 64 << 10, IsNotFound: apiclient.IsNotFound}
	if mod != nil {
		mod(&opts)
	}
	res, err := backup.Run(context.Background(), api, root, opts)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

func tree(t *testing.T) string {
	root := t.TempDir()
	mt := time.Unix(1700000000, 5).UTC()
	for i, size := range []int{10, 1000, 70_000, 300_000} {
		ibtest.WriteFile(t, filepath.Join(root, "d", string(rune('a'+i))), ibtest.RandomBytes(size), 0o644, mt)
	}
	return root
}

func TestIncremental(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	tags := manifest.Tags{"node": "tezos"}

	first := run(t, api, root, tags, nil)
	// 10 B, 1000 B: 1 block each; 70000: 2; 300000: 5 (64 KiB blocks).
	// The 10 B file's CID is an inline one: nothing to upload. Each file
	// is read to be named, then again to be sent, but for files of at
	// most 4 KiB, sent from the bytes that named them.
	if first.Blocks != 9 || first.NewBlocks != 8 || first.ReusedFiles != 0 || first.ReadBytes != 2*first.Bytes-1010 {
		t.Fatalf("first backup: %+v", first)
	}

	t.Run("no change reads and sends nothing", func(t *testing.T) {
		res := run(t, api, root, tags, nil)
		if res.NewBlocks != 0 || res.UploadedBytes != 0 || res.ReadBytes != 0 || res.ReusedFiles != 4 {
			t.Fatalf("no-change backup: new_blocks %d uploaded %d read %d reused %d; want 0 0 0 4",
				res.NewBlocks, res.UploadedBytes, res.ReadBytes, res.ReusedFiles)
		}
		if res.ID == first.ID || res.ParentID == 0 {
			t.Fatalf("no-change backup id %d parent %d", res.ID, res.ParentID)
		}
	})

	t.Run("one changed block sends only that block", func(t *testing.T) {
		p := filepath.Join(root, "d", "d") // 300000 bytes, 5 blocks
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("changed"), 70_000) // inside the second block
		f.Close()
		os.Chtimes(p, time.Now(), time.Now())
		res := run(t, api, root, tags, nil)
		if res.NewBlocks != 1 || res.ReusedFiles != 3 || res.ReadBytes != 300_000+64<<10 {
			t.Fatalf("changed file: new_blocks %d reused %d read %d; want 1 3 %d", res.NewBlocks, res.ReusedFiles, res.ReadBytes, 300_000+64<<10)
		}
		if res.UploadedBytes < 64<<10 || res.UploadedBytes > 70<<10 {
			t.Fatalf("uploaded %d bytes for one random 64 KiB block", res.UploadedBytes)
		}
	})

	t.Run("other tags reuse nothing but send nothing known", func(t *testing.T) {
		res := run(t, api, root, manifest.Tags{"node": "other"}, nil)
		if res.ReusedFiles != 0 || res.NewBlocks != 0 || res.UploadedBytes != 0 || res.ParentID != 0 {
			t.Fatalf("other tags: %+v", res)
		}
	})

	t.Run("full reuses nothing but sends nothing known", func(t *testing.T) {
		res := run(t, api, root, tags, func(o *backup.Options) { o.Full = true })
		if res.ReusedFiles != 0 || res.NewBlocks != 0 || res.UploadedBytes != 0 || res.ReadBytes != res.Bytes {
			t.Fatalf("--full: %+v", res)
		}
	})
}

func TestCommitUploadsBlocksTheServerLost(t *testing.T) {
	// A reused entry's block can vanish from the server between backups
	// (garbage collection, a restore of the server's data dir). The commit
	// then answers 409 with the missing CIDs, and the client uploads them
	// from the unchanged files.
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	tags := manifest.Tags{"node": "x"}
	first := run(t, api, root, tags, nil)
	if first.NewBlocks != 8 { // and one inline CID
		t.Fatalf("first: %+v", first)
	}
	missing := &losingAPI{API: api, lose: true}
	res := run(t, missing, root, tags, nil)
	if res.ReusedFiles != 4 || res.NewBlocks != 8 || missing.commits != 2 {
		t.Fatalf("after the server lost its blocks: reused %d new %d commits %d; want 4 8 2", res.ReusedFiles, res.NewBlocks, missing.commits)
	}
}

// losingAPI answers the first commit with every stored block missing, as a
// server that lost them would (inline CIDs are never missing).
type losingAPI struct {
	backup.API
	lose    bool
	commits int
}

func (l *losingAPI) Commit(ctx context.Context, body func() (io.ReadCloser, int64, error), h apiclient.CommitHeader) (apiclient.Committed, error) {
	l.commits++
	if l.lose {
		l.lose = false
		rc, _, err := body()
		if err != nil {
			return apiclient.Committed{}, err
		}
		defer rc.Close()
		var cids []string
		r := manifest.NewReader(rc, nil)
		for {
			e, err := r.Next()
			if err != nil {
				break
			}
			for _, b := range e.Blocks {
				if !block.IsInline(b.CID) {
					cids = append(cids, b.CID)
				}
			}
		}
		return apiclient.Committed{Missing: cids}, nil
	}
	return l.API.Commit(ctx, body, h)
}

// changingAPI changes a file after the client hashed it and before it
// uploads it (when the client first asks which blocks are missing; several
// questions may be in flight at once).
type changingAPI struct {
	*apiclient.Client
	change func() error
	once   sync.Once
}

func (c *changingAPI) Missing(ctx context.Context, cids []string) ([]string, error) {
	var err error
	c.once.Do(func() { err = c.change() })
	if err != nil {
		return nil, err
	}
	return c.Client.Missing(ctx, cids)
}

// rewriteInPlace writes over a file's bytes at 1000, keeping its size.
func rewriteInPlace(path string) func() error {
	return func() error {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("rewritten"), 1000)
		return err
	}
}

// swapForFIFO replaces a file with a FIFO of the same name.
func swapForFIFO(path string) func() error {
	return func() error {
		if err := os.Remove(path); err != nil {
			return err
		}
		return syscall.Mkfifo(path, 0o644)
	}
}

// commitCounter counts commits and can fail the first one after reading
// part of its body, as a cut connection would.
type commitCounter struct {
	*apiclient.Client
	calls     atomic.Int64
	failFirst bool
}

func (c *commitCounter) Commit(ctx context.Context, body func() (io.ReadCloser, int64, error), h apiclient.CommitHeader) (apiclient.Committed, error) {
	if c.calls.Add(1) == 1 && c.failFirst {
		rc, _, err := body()
		if err != nil {
			return apiclient.Committed{}, err
		}
		io.CopyN(io.Discard, rc, 10)
		rc.Close()
		return apiclient.Committed{}, errors.New("connection reset by peer")
	}
	return c.Client.Commit(ctx, body, h)
}

// TestStreamedCommit: the manifest goes to the server in one request
// opened at the start of the backup; when that request fails, the spooled
// manifest is committed instead, once, under the same idempotency key.
func TestStreamedCommit(t *testing.T) {
	srv := ibtest.StartServer(t)
	root := tree(t)
	tags := manifest.Tags{"node": "stream"}

	c := &commitCounter{Client: client(t, srv)}
	first := run(t, c, root, tags, nil)
	second := run(t, c, root, tags, nil)
	if c.calls.Load() != 2 || first.ID == 0 || second.ID == first.ID {
		t.Fatalf("%d commit requests for 2 backups (ids %d, %d); want one each", c.calls.Load(), first.ID, second.ID)
	}

	failing := &commitCounter{Client: client(t, srv), failFirst: true}
	third := run(t, failing, root, tags, nil)
	if failing.calls.Load() != 2 || third.ID == 0 {
		t.Fatalf("after a failed stream: %d commit requests, id %d; want 2 and a backup", failing.calls.Load(), third.ID)
	}
	list, err := c.List(context.Background(), tags)
	if err != nil || len(list) != 3 {
		t.Fatalf("backups: %d (%v), want 3", len(list), err)
	}
}

// manifestCounter counts the manifests downloaded.
type manifestCounter struct {
	backup.API
	n atomic.Int64
}

func (m *manifestCounter) Manifest(ctx context.Context, id int64) (io.ReadCloser, error) {
	m.n.Add(1)
	return m.API.Manifest(ctx, id)
}

// TestManifestCache: a backup keeps its manifest in the cache, and the next
// one with the same tags reads it from there instead of downloading it,
// with the same result; one file per tag set. A damaged cache file, or a
// newer backup made elsewhere, makes the next backup download the newest
// manifest again (and still reuse what it may).
func TestManifestCache(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := &manifestCounter{API: client(t, srv)}
	root := tree(t)
	tags := manifest.Tags{"node": "tezos"}
	cache := &backup.ManifestCache{Dir: filepath.Join(t.TempDir(), "cache")}
	withCache := func(o *backup.Options) { o.Cache = cache }
	files := func() []string {
		m, _ := filepath.Glob(filepath.Join(cache.Dir, "*.json"))
		return m
	}

	first := run(t, api, root, tags, withCache)
	if n := len(files()); n != 1 {
		t.Fatalf("%d cache files after the first backup, want 1", n)
	}
	// The commit's answer gives the creation time the cache is keyed by.
	if s, err := api.Latest(context.Background(), tags); err != nil || !s.CreatedAt.Equal(first.CreatedAt) ||
		!strings.Contains(files()[0], fmt.Sprintf("-%d-%d-", first.ID, first.CreatedAt.UnixNano())) {
		t.Fatalf("backup %d created at %v; the server says %v (%v); cache file %s", first.ID, first.CreatedAt, s.CreatedAt, err, files()[0])
	}
	second := run(t, api, root, tags, withCache)
	if api.n.Load() != 0 || second.ParentID != first.ID || second.ReusedFiles != 4 || second.ReadBytes != 0 {
		t.Fatalf("second backup: %d manifests downloaded, parent %d (want %d), reused %d, read %d; want 0 downloads, 4 reused, 0 read",
			api.n.Load(), second.ParentID, first.ID, second.ReusedFiles, second.ReadBytes)
	}
	if f := files(); len(f) != 1 || !strings.Contains(filepath.Base(f[0]), fmt.Sprintf("-%d-", second.ID)) {
		t.Fatalf("cache files %v, want only backup %d's", f, second.ID)
	}
	// A tag set not backed up for over a month loses its file at the next
	// backup of any other.
	stale := filepath.Join(cache.Dir, "0123456789abcdef-1-1-00.json")
	os.WriteFile(stale, []byte("{}"), 0o600)
	old := time.Now().Add(-40 * 24 * time.Hour)
	os.Chtimes(stale, old, old)
	run(t, api, root, manifest.Tags{"node": "other"}, withCache)
	if f := files(); len(f) != 2 || slices.Contains(f, stale) {
		t.Fatalf("cache files %v, want one per live tag set and not the stale one", f)
	}

	t.Run("damaged", func(t *testing.T) {
		var mine string
		for _, f := range files() {
			if strings.Contains(filepath.Base(f), fmt.Sprintf("-%d-", second.ID)) {
				mine = f
			}
		}
		b, err := os.ReadFile(mine)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		os.WriteFile(mine, b, 0o600)
		before := api.n.Load()
		res := run(t, api, root, tags, withCache)
		if api.n.Load() != before+1 || res.ReusedFiles != 4 || res.ParentID != second.ID {
			t.Fatalf("damaged cache: %d downloads, reused %d, parent %d; want 1, 4, %d", api.n.Load()-before, res.ReusedFiles, res.ParentID, second.ID)
		}
	})

	t.Run("unusable cache folder", func(t *testing.T) {
		notDir := filepath.Join(t.TempDir(), "file")
		os.WriteFile(notDir, nil, 0o600)
		res := run(t, api, root, tags, func(o *backup.Options) { o.Cache = &backup.ManifestCache{Dir: notDir} })
		if res.ID == 0 || res.ReusedFiles != 4 {
			t.Fatalf("backup with an unusable cache: %+v", res)
		}
	})

	t.Run("newer backup made elsewhere", func(t *testing.T) {
		p := filepath.Join(root, "d", "a")
		mt := time.Unix(1800000000, 0)
		os.WriteFile(p, []byte("changed elsewhere"), 0o644)
		os.Chtimes(p, mt, mt)
		elsewhere := run(t, api, root, tags, nil) // no cache: as another machine
		before := api.n.Load()
		res := run(t, api, root, tags, withCache)
		if api.n.Load() != before+1 || res.ParentID != elsewhere.ID || res.ReusedFiles != 4 {
			t.Fatalf("after a backup made elsewhere: %d downloads, parent %d (want %d), reused %d (want 4)",
				api.n.Load()-before, res.ParentID, elsewhere.ID, res.ReusedFiles)
		}
	})
}

// TestProgressTotals: a first backup's totals, for its ETA, come from a
// prescan that walks the folder a second time and counts every name of a
// file, as the summary does. A later backup estimates them from the
// previous one as it walks, without a prescan: the estimate is there
// before the first file is read, and exact at the end.
func TestProgressTotals(t *testing.T) {
	srv := ibtest.StartServer(t)
	api := client(t, srv)
	root := tree(t)
	if err := os.Link(filepath.Join(root, "d", "b"), filepath.Join(root, "d", "b2")); err != nil {
		t.Fatal(err)
	}
	var prescans atomic.Int64
	backup.SetOnPrescan(func() { prescans.Add(1) })
	t.Cleanup(func() { backup.SetOnPrescan(nil) })
	var first, next progress.Counters
	counters := &first
	var atFirstRead atomic.Int64
	backup.SetBeforeOpen(func(string) {
		// The first read of the first backup waits for the prescan's
		// totals, as a long backup's reads go on while its prescan runs.
		for deadline := time.Now().Add(10 * time.Second); !counters.TotalsDone.Load() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		atFirstRead.CompareAndSwap(0, counters.TotalFiles.Load())
	})
	t.Cleanup(func() { backup.SetBeforeOpen(nil) })
	withTotals := func(c *progress.Counters) func(*backup.Options) {
		return func(o *backup.Options) { o.Prescan, o.Counters = true, c }
	}

	run(t, api, root, manifest.Tags{"n": "v"}, withTotals(&first))
	if prescans.Load() != 1 || !first.TotalsDone.Load() || first.TotalFiles.Load() != 5 || first.TotalBytes.Load() != 10+2*1000+70_000+300_000 {
		t.Fatalf("first backup: %d prescans, totals %d files, %d bytes (done %v), want 1, 5 files, 372010 bytes",
			prescans.Load(), first.TotalFiles.Load(), first.TotalBytes.Load(), first.TotalsDone.Load())
	}

	ibtest.WriteFile(t, filepath.Join(root, "d", "new"), ibtest.RandomBytes(5), 0o644, time.Unix(1700000001, 0))
	if err := os.Remove(filepath.Join(root, "d", "a")); err != nil {
		t.Fatal(err)
	}
	counters = &next
	atFirstRead.Store(0)
	res := run(t, api, root, manifest.Tags{"n": "v"}, withTotals(&next))
	if prescans.Load() != 1 || res.ReusedFiles != 3 || atFirstRead.Load() < 4 {
		t.Fatalf("next backup: %d prescans in all, %d files reused, totals at its first read %d files, want 1, 3, an estimate of 4 or more",
			prescans.Load(), res.ReusedFiles, atFirstRead.Load())
	}
	if next.TotalFiles.Load() != 5 || next.TotalBytes.Load() != 5+2*1000+70_000+300_000 {
		t.Fatalf("totals %d files, %d bytes at the end, want 5 files, 372005 bytes", next.TotalFiles.Load(), next.TotalBytes.Load())
	}

	// A quiet backup (the agent's: no prescan asked for) has the estimate
	// too, and a quiet first backup no totals.
	var quiet, quietFirst progress.Counters
	counters = &quiet
	noPrescan := func(c *progress.Counters) func(*backup.Options) {
		return func(o *backup.Options) { o.Counters = c }
	}
	run(t, api, root, manifest.Tags{"n": "v"}, noPrescan(&quiet))
	if !quiet.TotalsDone.Load() || quiet.TotalFiles.Load() != 5 {
		t.Fatalf("quiet backup: totals %d files (done %v), want 5", quiet.TotalFiles.Load(), quiet.TotalsDone.Load())
	}
	counters = &quietFirst
	quietFirst.TotalsDone.Store(true) // the first read does not wait
	run(t, api, root, manifest.Tags{"n": "quiet"}, noPrescan(&quietFirst))
	if prescans.Load() != 1 || quietFirst.TotalFiles.Load() != 0 {
		t.Fatalf("quiet first backup: %d prescans in all, totals %d files; want 1 and none", prescans.Load(), quietFirst.TotalFiles.Load())
	}
}
