package backup

import (
	"context"
	"errors"
	"fmt"
	"io"

	"ib/internal/block"
	"ib/internal/chunk"
	"ib/internal/ctxio"
	"ib/internal/manifest"
)

// Files larger than chunk.Min are cut at content-defined boundaries
// unless Options.BlockSize asks for fixed-size blocks. A cutter holds
// chunk.Max bytes; at most maxCutters are made, so that a machine with
// many cores does not hold one per hash worker (four read faster than a
// disk gives: the cut costs ~0.5 ns a byte here, the block's SHA-256
// ~0.6).
const maxCutters = 4

// cutters lends chunk.Cutters, made when first needed.
type cutters chan *chunk.Cutter

func newCutters(n int) cutters {
	c := make(cutters, min(n, maxCutters))
	for range cap(c) {
		c <- nil
	}
	return c
}

func (c cutters) get(ctx context.Context) (*chunk.Cutter, error) {
	select {
	case ct := <-c:
		if ct == nil {
			ct = chunk.New()
		}
		return ct, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c cutters) put(ct *chunk.Cutter) { c <- ct }

// cuts reports whether a file of size bytes is cut at content-defined
// boundaries.
func (r *run) cuts(size int64) bool { return r.opts.BlockSize == 0 && size > chunk.Min }

// fixedSize is the block size of files that are not cut: the option, or
// for files of at most chunk.Min bytes (one block) the largest.
func (r *run) fixedSize() int64 {
	if r.opts.BlockSize > 0 {
		return r.opts.BlockSize
	}
	return block.MaxSize
}

// cutFile reads up to size bytes of f and names its content-defined
// blocks, calling each for every block's bytes (valid during the call).
// It returns the bytes read: fewer than size if the file shrank.
func (r *run) cutFile(ctx context.Context, f regularFile, size int64, each func(b []byte, blk manifest.Block) error) (int64, error) {
	ct, err := r.cutters.get(ctx)
	if err != nil {
		return 0, err
	}
	defer r.cutters.put(ct)
	ct.Reset(ctxio.Reader(ctx, io.LimitReader(f, size)))
	var n int64
	for {
		b, err := ct.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		n += int64(len(b))
		r.readB.Add(int64(len(b)))
		if err := each(b, manifest.Block{CID: block.Sum(b).String(), Size: int64(len(b))}); err != nil {
			return n, err
		}
	}
}

// cutKnownFile names the content-defined blocks of a changed file like
// cutFile, given what its previous version was cut into: blocks unchanged
// at their old offsets are named without running the cut over them
// (chunk.CutKnown; the blocks are the same as cutFile's). A file changed
// in place or appended to, a database or a log, is then read and hashed
// but cut only around its changes.
func (r *run) cutKnownFile(ctx context.Context, f regularFile, size int64, hint []manifest.Block, each func(manifest.Block)) (int64, error) {
	ct, err := r.cutters.get(ctx)
	if err != nil {
		return 0, err
	}
	defer r.cutters.put(ct)
	known := make([]chunk.Known, len(hint))
	for i, b := range hint {
		known[i] = chunk.Known{Size: b.Size, Sum: b.CID}
	}
	sum := func(b []byte) string { return block.Sum(b).String() }
	same := func(rd io.ReaderAt, off int64, k chunk.Known) (bool, error) {
		return block.HasCID(rd, off, k.Size, k.Sum)
	}
	n, err := ct.CutKnown(ctx, f, size, known, sum, same,
		func(_ []byte, k chunk.Known) error {
			r.readB.Add(k.Size)
			each(manifest.Block{CID: k.Sum, Size: k.Size})
			return nil
		})
	if err != nil {
		return n, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return n, nil
}
