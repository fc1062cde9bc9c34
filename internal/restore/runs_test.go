package restore_test

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"ib/internal/ibtest"
	"ib/internal/restore"
)

// cutPack cuts the body of the first pack it serves after limit bytes,
// and records what each request asked for.
type cutPack struct {
	restore.API
	limit int64
	mu    sync.Mutex
	asked [][]string
}

func (c *cutPack) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.asked = append(c.asked, slices.Clone(cids))
	first := len(c.asked) == 1
	c.mu.Unlock()
	rc, err := c.API.FetchBlocks(ctx, cids)
	if err != nil || !first {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&cutReader{r: rc, left: c.limit}, rc}, nil
}

type cutReader struct {
	r    io.Reader
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	return n, err
}

// TestBlocksOfAFileComeInPacks: the blocks of a large file are asked for
// in a few packs, not one request each; a pack cut in the middle is asked
// for again from the first block not written, and the file is restored
// whole.
func TestBlocksOfAFileComeInPacks(t *testing.T) {
	const bs = 64 << 10
	api, src, id := backedUp(t, bs, func(s string) {
		ibtest.WriteFile(t, filepath.Join(s, "ancient", "bodies.cdat"), ibtest.RandomBytes(40*bs+123), 0o644, time.Unix(1700000000, 0))
	})
	c := &cutPack{API: api, limit: 5*bs + 1000} // in the sixth block
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := restore.Run(context.Background(), c, id, dst, restore.Options{Jobs: 1}); err != nil {
		t.Fatalf("restore through a cut pack: %v", err)
	}
	ibtest.TreesEqual(t, src, dst, nil)
	if len(c.asked) != 2 || len(c.asked[0]) != 41 {
		t.Fatalf("%d requests of %v blocks: want one pack of the 41 blocks and one after the cut", len(c.asked), lens(c.asked))
	}
	if again := c.asked[1]; len(again) != 36 || again[35] != c.asked[0][40] {
		t.Fatalf("after a cut in the sixth block, asked again for %d blocks: want the 36 from the sixth on", len(again))
	}
}

func lens(asked [][]string) []int {
	var n []int
	for _, a := range asked {
		n = append(n, len(a))
	}
	return n
}
