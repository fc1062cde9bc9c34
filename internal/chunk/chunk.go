// Package chunk cuts a file's bytes into blocks at content-defined
// boundaries, so that a change inside a large file changes the block
// around it and not, as fixed 128 MiB blocks did, up to 128 MiB of bytes
// that did not change; an insertion does not shift every block after it.
//
// Boundaries come from FastCDC (a Gear hash with normalised chunking, the
// go-cdc-chunkers implementation named "fastcdc-v1.0.0", whose cut points
// that name keeps): blocks are Min to Max bytes long, a little over
// Normal on average; the last block of a file may be shorter. Nothing is
// keyed, so every client cuts the same bytes the same way: two nodes of
// one chain share the blocks of the files they have in common. (JC, the
// library's faster jump-based chunker, was tried first and left: after 4
// KiB inserted into a file it found its old boundaries again only blocks
// later; see TestInsertionChangesOnlyTheBlocksAroundIt.)
//
// The algorithm and these sizes are part of the repository format:
// changing any of them gives every large file new blocks, uploaded again
// in full. TestBoundariesAreStable holds them.
package chunk

import (
	"errors"
	"fmt"
	"io"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers the algorithm
)

const (
	// Algorithm names the cut-point function and its version.
	Algorithm = "fastcdc-v1.0.0"
	// Min is the shortest block cut; a file of at most Min bytes is one block.
	Min = 1 << 20
	// Normal is the length blocks are cut at on average.
	Normal = 2 << 20
	// Max is the longest block cut.
	Max = 8 << 20
)

// Cutter cuts one stream at a time, at about 2 GB/s a core here (the
// SHA-256 of the blocks: 1.7). It holds a buffer of Max bytes (one of
// 2 × Max moves less after each cut, and was no faster); reuse it with
// Reset.
type Cutter struct {
	c    *chunkers.Chunker
	done bool
}

// New returns a Cutter; Reset gives it a stream.
func New() *Cutter {
	opts := &chunkers.ChunkerOpts{MinSize: Min, NormalSize: Normal, MaxSize: Max}
	c, err := chunkers.NewChunkerBuffer(Algorithm, nil, opts, make([]byte, Max))
	if err != nil {
		panic(fmt.Sprintf("chunk: %s with %d/%d/%d: %v", Algorithm, Min, Normal, Max, err)) // constants: a programming error
	}
	return &Cutter{c: c}
}

// Reset starts cutting r.
func (c *Cutter) Reset(r io.Reader) {
	c.c.Reset(r)
	c.done = false
}

// Next returns the next block's bytes, valid until the following call,
// and io.EOF after the last one. A read error is returned wrapped.
func (c *Cutter) Next() ([]byte, error) {
	if c.done {
		return nil, io.EOF
	}
	b, err := c.c.Next()
	if errors.Is(err, io.EOF) {
		// the last block comes with io.EOF (or none does)
		c.done = true
		if len(b) == 0 {
			return nil, io.EOF
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cut: %w", err)
	}
	return b, nil
}
