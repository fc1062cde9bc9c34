package chunk

import (
	"context"
	"fmt"
	"io"

	"ib/internal/ctxio"
)

// Known is a block of a file's previous version: its length and its name
// (the one CutKnown's sum gives its bytes).
type Known struct {
	Size int64
	Sum  string
}

// CutKnown cuts the size bytes of r exactly as a Cutter would, but takes a
// block of known (what the previous version of the file was cut into, by
// this same cut) without running the cut over it when that block's bytes
// are unchanged at its old offset and the cut is sure to fall where it
// fell then. A file changed in place or appended to is thus cut at the
// speed of naming its blocks: the cut runs only from a changed block to the
// next old boundary it finds again. emit gets every block in order, its
// length and name, and its bytes (valid during the call) when the cut made
// it; b is nil for a known block taken as it was. It returns the bytes cut:
// fewer than size if r ended sooner.
//
// The cut of a block starting at p depends on its own bytes, on the byte
// after it (FastCDC hashes it before cutting in front of it), and on how
// many bytes follow p up to Max (within Normal of the end the cut takes
// the end into account). So an old block is taken when its bytes are the
// same, and either it ended the file then and ends it now, or it was Max
// long (no byte after it was read), or the old block after it is the same
// too (the byte after it is) and it did not end at the old end.
//
// known must come from this package's cut (Algorithm, Min, Normal, Max):
// blocks cut otherwise would be taken as they are and their boundaries
// kept (blocks longer than Max make CutKnown ignore known). sum names the
// blocks it cuts; same reports whether the bytes of r at off are block k
// (bytes that end early are not), reading them from r without holding them.
func (c *Cutter) CutKnown(ctx context.Context, r io.ReaderAt, size int64, known []Known,
	sum func([]byte) string, same func(r io.ReaderAt, off int64, k Known) (bool, error),
	emit func(b []byte, blk Known) error) (int64, error) {
	k := newKnownFile(known)
	var p int64
	for p < size {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		if i, ok := k.at[p]; ok {
			taken, n, err := k.take(r, p, i, size, same, emit)
			if err != nil {
				return p, err
			}
			if taken {
				p += n
				continue
			}
		}
		n, err := c.cutUntilKnown(ctx, r, p, size, k, sum, emit)
		p += n
		if err != nil {
			return p, err
		}
		if n == 0 {
			return p, nil // r ended before size
		}
	}
	return p, nil
}

// knownFile indexes a previous version's blocks by offset and remembers
// the last block it compared.
type knownFile struct {
	blocks []Known
	at     map[int64]int // offset → index
	end    int64         // the old size
	// the last comparison: block index and whether it was the same
	last     int
	lastSame bool
}

func newKnownFile(blocks []Known) *knownFile {
	k := &knownFile{blocks: blocks, at: make(map[int64]int, len(blocks)), last: -1}
	for i, b := range blocks {
		if b.Size <= 0 || b.Size > Max {
			return &knownFile{at: map[int64]int{}, last: -1} // not this package's cut: no hints
		}
		k.at[k.end] = i
		k.end += b.Size
	}
	return k
}

// same reports whether the bytes of r at old block i's offset are block
// i, comparing each block once.
func (k *knownFile) same(r io.ReaderAt, off int64, i int, same func(io.ReaderAt, int64, Known) (bool, error)) (bool, error) {
	if i == k.last {
		return k.lastSame, nil
	}
	ok, err := same(r, off, k.blocks[i])
	if err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	k.last, k.lastSame = i, ok
	return ok, nil
}

// take emits old block i at p if it is sure to be cut as it was.
func (k *knownFile) take(r io.ReaderAt, p int64, i int, size int64,
	same func(io.ReaderAt, int64, Known) (bool, error), emit func([]byte, Known) error) (bool, int64, error) {
	b := k.blocks[i]
	if p+b.Size > size {
		return false, 0, nil
	}
	if ok, err := k.same(r, p, i, same); err != nil || !ok {
		return false, 0, err
	}
	switch end := p + b.Size; {
	case end == k.end && end == size: // it ended the file then and does now
	case end == k.end || end == size: // the end moved across it: cut again
		return false, 0, nil
	case b.Size == Max: // no byte after it was read
	default: // the byte after it must be the same: the next old block is
		if ok, err := k.same(r, end, i+1, same); err != nil || !ok {
			return false, 0, err
		}
	}
	return true, b.Size, emit(nil, b)
}

// cutUntilKnown runs the cut from p and emits its blocks until one ends
// where an old block starts, or r ends. It returns the bytes emitted.
func (c *Cutter) cutUntilKnown(ctx context.Context, r io.ReaderAt, p, size int64, k *knownFile,
	sum func([]byte) string, emit func([]byte, Known) error) (int64, error) {
	c.Reset(ctxio.Reader(ctx, io.NewSectionReader(r, p, size-p)))
	var n int64
	for {
		b, err := c.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := emit(b, Known{Size: int64(len(b)), Sum: sum(b)}); err != nil {
			return n, err
		}
		n += int64(len(b))
		if _, ok := k.at[p+n]; ok {
			return n, nil
		}
	}
}
