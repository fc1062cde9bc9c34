//go:build unix

package restore_test

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
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/block"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/restore"
)

// backedUp starts a server, lets fill write a tree and backs it up with
// blocks of blockSize (0: the default).
func backedUp(t *testing.T, blockSize int64, fill func(src string)) (*apiclient.Client, string, int64) {
	t.Helper()
	srv := ibtest.StartServer(t)
	api, err := apiclient.New(srv.URL, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	fill(src)
	res, err := backup.Run(context.Background(), api, src, backup.Options{BlockSize: blockSize, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	return api, src, res.ID
}

// setup backs up 20 files of about 100 KB in 32 KiB blocks.
func setup(t *testing.T) (*apiclient.Client, string, int64) {
	return backedUp(t, 32<<10, func(src string) {
		for i := range 20 {
			ibtest.WriteFile(t, filepath.Join(src, "d", strings.Repeat("f", i+1)), ibtest.RandomBytes(100_000+i), 0o640, time.Unix(1700000000, int64(i)))
		}
	})
}

// cancelling cancels the restore after n blocks.
type cancelling struct {
	restore.API
	n      atomic.Int64
	cancel func()
}

func (c *cancelling) GetBlock(ctx context.Context, cid string) (io.ReadCloser, error) {
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	return c.API.GetBlock(ctx, cid)
}

// FetchBlocks serves the blocks of a pack before the nth, then cuts the
// connection and cancels, as GetBlock does.
func (c *cancelling) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	left := c.n.Add(-int64(len(cids)))
	before := left + int64(len(cids))
	if before <= 0 || left > 0 {
		return c.API.FetchBlocks(ctx, cids)
	}
	if before == 1 {
		c.cancel()
		return nil, context.Canceled
	}
	rc, err := c.API.FetchBlocks(ctx, cids[:before-1])
	if err != nil {
		return nil, err
	}
	return &cutAtEnd{ReadCloser: rc, cancel: c.cancel}, nil
}

// cutAtEnd cancels and fails where its body would end.
type cutAtEnd struct {
	io.ReadCloser
	cancel func()
}

func (c *cutAtEnd) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err == io.EOF {
		c.cancel()
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func TestInterruptedRestoreResumes(t *testing.T) {
	api, src, id := setup(t)
	dst := filepath.Join(t.TempDir(), "dst")
	ctx, cancel := context.WithCancel(context.Background())
	c := &cancelling{API: api, cancel: cancel}
	c.n.Store(30) // of 80 blocks
	if _, err := restore.Run(ctx, c, id, dst, restore.Options{Jobs: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, restore.Marker)); err != nil {
		t.Fatalf("no marker after an interrupted restore: %v", err)
	}
	parts, _ := filepath.Glob(filepath.Join(dst, "d", "*.ib-part"))
	if len(parts) != 0 {
		t.Fatalf("partial files left behind: %v", parts)
	}
	// The same command again, without --force, completes the restore and
	// keeps what was finished.
	res, err := restore.Run(context.Background(), api, id, dst, restore.Options{})
	if err != nil {
		t.Fatalf("resumed restore: %v", err)
	}
	if res.Kept == 0 || res.Kept == 20 {
		t.Errorf("resume kept %d of 20 files; want some but not all", res.Kept)
	}
	ibtest.TreesEqual(t, src, dst, nil)
}

// evil serves a manifest of its own making, as a compromised server could.
type evil struct {
	restore.API
	manifest string
}

func (e *evil) Manifest(context.Context, int64) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(e.manifest)), nil
}

func TestHostileManifests(t *testing.T) {
	api, _, _ := setup(t)
	data := []byte("owned")
	c := block.Sum(data).String()
	mt := `"mtime":"2024-01-01T00:00:00Z"`
	root := `{"path":".","type":"dir","mode":493,` + mt + `}`
	file := func(p string) string {
		return `{"path":"` + p + `","type":"file","mode":420,` + mt + `,"size":5,"blocks":[{"cid":"` + c + `","size":5}]}`
	}
	for name, entries := range map[string]string{
		"dotdot":        root + "," + file("../escaped"),
		"absolute":      root + "," + file("/tmp/escaped"),
		"under symlink": root + `,{"path":"l","type":"symlink","mode":511,` + mt + `,"target":".."},` + file("l/escaped"),
		"repeated":      root + "," + file("a") + "," + file("a"),
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			e := &evil{API: api, manifest: `{"id":1,"tags":{},"entries":[` + entries + `]}`}
			_, err := restore.Run(context.Background(), e, 1, dst, restore.Options{})
			if !errors.Is(err, manifest.ErrInvalid) && !errors.Is(err, manifest.ErrBadPath) {
				t.Fatalf("hostile manifest: %v, want a validation error", err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Fatalf("a refused manifest wrote %d entries", len(ents))
			}
			if _, err := os.Stat("/tmp/escaped"); err == nil {
				t.Fatal("wrote /tmp/escaped")
			}
		})
	}
}

// lying serves bytes other than those a block's CID names.
type lying struct{ restore.API }

func (l lying) GetBlock(ctx context.Context, cid string) (io.ReadCloser, error) {
	wire, _ := block.Encode(make([]byte, 32<<10), block.DefaultLevel)
	return io.NopCloser(strings.NewReader(string(wire))), nil
}

// FetchBlocks answers a pack of the CIDs asked for, each with those bytes.
func (l lying) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	wire, _ := block.Encode(make([]byte, 32<<10), block.DefaultLevel)
	var pack []byte
	for _, c := range cids {
		pack = block.AppendFrame(pack, c, wire)
	}
	return io.NopCloser(strings.NewReader(string(pack))), nil
}

func TestWrongBytesAreNeverWritten(t *testing.T) {
	api, _, id := setup(t)
	dst := filepath.Join(t.TempDir(), "dst")
	_, err := restore.Run(context.Background(), lying{api}, id, dst, restore.Options{})
	// 32 KiB of zeros are either the wrong bytes for a full block or too
	// many for a file's last, shorter block: refused either way.
	if !errors.Is(err, block.ErrMismatch) && !errors.Is(err, block.ErrTooLarge) {
		t.Fatalf("restore from a lying server: %v, want ErrMismatch or ErrTooLarge", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dst, "d"))
	if len(ents) != 0 {
		t.Fatalf("%d files written from bad blocks", len(ents))
	}
}

// A symlink already in DEST where the backup has a folder must not lead
// a --force restore outside DEST.
func TestForceDoesNotFollowSymlinksInDest(t *testing.T) {
	api, src, id := setup(t)
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	os.Mkdir(outside, 0o755)
	dst := filepath.Join(parent, "dst")
	os.Mkdir(dst, 0o755)
	if err := os.Symlink(outside, filepath.Join(dst, "d")); err != nil { // the backup has a folder "d"
		t.Fatal(err)
	}
	if _, err := restore.Run(context.Background(), api, id, dst, restore.Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("restore wrote %d entries through a symlink, outside DEST", len(ents))
	}
	ibtest.TreesEqual(t, src, dst, nil)
}

// setupSmall backs up 300 small files (one block each) in three folders,
// some with the same content.
func setupSmall(t *testing.T) (*apiclient.Client, string, int64) {
	return backedUp(t, 0, func(src string) {
		same := ibtest.RandomBytes(777)
		for i := range 300 {
			data := ibtest.RandomBytes(1 + i*17)
			if i%50 == 0 {
				data = same
			}
			ibtest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d", i)), data, 0o600+os.FileMode(i%2)*0o44, time.Unix(1700000000, int64(i)))
		}
	})
}

// cutting cuts the first n pack answers after a few KiB and fails the
// restore's context after the mth pack when asked.
type cutting struct {
	restore.API
	cuts   atomic.Int64
	packs  atomic.Int64
	cancel func()
	after  int64
}

func (c *cutting) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	rc, err := c.API.FetchBlocks(ctx, cids)
	if err != nil {
		return nil, err
	}
	if c.cancel != nil && c.packs.Add(1) == c.after {
		c.cancel()
	}
	if c.cuts.Add(-1) >= 0 {
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(rc, 5000), iotestErr{}), rc}, nil
	}
	return rc, nil
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestSmallFilesInPacks: small files come many per request; a pack cut
// short is asked for again from where it stopped, and the tree is exact.
func TestSmallFilesInPacks(t *testing.T) {
	api, src, id := setupSmall(t)
	c := &cutting{API: api}
	c.cuts.Store(2)
	dst := filepath.Join(t.TempDir(), "dst")
	res, err := restore.Run(context.Background(), c, id, dst, restore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 300 || c.cuts.Load() >= 0 {
		t.Fatalf("restored %d files with %d cuts left; want 300 and both cuts used", res.Files, c.cuts.Load())
	}
	ibtest.TreesEqual(t, src, dst, nil)
}

// TestSmallFilesInterruptedResume: cancelled between packs, no partial
// file is left, and the same command completes the tree.
func TestSmallFilesInterruptedResume(t *testing.T) {
	api, src, id := setupSmall(t)
	dst := filepath.Join(t.TempDir(), "dst")
	ctx, cancel := context.WithCancel(context.Background())
	c := &cutting{API: api, cancel: cancel, after: 1}
	if _, err := restore.Run(ctx, c, id, dst, restore.Options{Jobs: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: %v", err)
	}
	parts, _ := filepath.Glob(filepath.Join(dst, "*", "*.ib-part"))
	if len(parts) != 0 {
		t.Fatalf("partial files left behind: %v", parts)
	}
	if _, err := restore.Run(context.Background(), api, id, dst, restore.Options{}); err != nil {
		t.Fatalf("resumed restore: %v", err)
	}
	ibtest.TreesEqual(t, src, dst, nil)
}

// lyingPacks answers packs whose blocks are not the ones asked for.
type lyingPacks struct {
	restore.API
	swap bool // answer another stored block under the CID asked for
}

func (l lyingPacks) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	data := []byte("not what you asked for")
	wire, _ := block.Encode(data, block.DefaultLevel)
	var pack []byte
	for _, c := range cids {
		if l.swap {
			pack = block.AppendFrame(pack, c, wire)
		} else {
			pack = block.AppendFrame(pack, block.Sum(data).String(), wire)
		}
	}
	return io.NopCloser(strings.NewReader(string(pack))), nil
}

func TestSmallFilesWrongBytesAreNeverWritten(t *testing.T) {
	api, src, id := setupSmall(t)
	for _, swap := range []bool{true, false} {
		dst := filepath.Join(t.TempDir(), "dst")
		_, err := restore.Run(context.Background(), lyingPacks{api, swap}, id, dst, restore.Options{})
		if err == nil {
			t.Fatalf("swap=%v: restore from a lying server succeeded", swap)
		}
		// Only files named by inline CIDs (their bytes are the
		// manifest's, not the server's) may be there, and right.
		for _, d := range []string{"d0", "d1", "d2"} {
			ents, _ := os.ReadDir(filepath.Join(dst, d))
			for _, e := range ents {
				got, _ := os.ReadFile(filepath.Join(dst, d, e.Name()))
				want, _ := os.ReadFile(filepath.Join(src, d, e.Name()))
				if len(got) > block.InlineMax || !bytes.Equal(got, want) {
					t.Fatalf("swap=%v: %s/%s (%d bytes) written from a bad block: %v", swap, d, e.Name(), len(got), err)
				}
			}
		}
	}
}
