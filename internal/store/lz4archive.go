package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"ib/internal/block"
)

// The .tar.lz4 of an archive is an LZ4 frame whose blocks each hold
// block.ChunkSize bytes of the tar, compressed on their own at the fast
// level: the same tar always gives the same bytes. Once one whole stream
// has been sent, or the index pass of a whole backup has run (lz4index.go),
// the size of each of its blocks is kept; from then on the stream has a
// length, and a Range request is answered by compressing again only the
// blocks it covers, so `curl -C -` resumes a dropped 400 GB download. The
// first stream of an archive is sent without a length.

// LZ4Archive is the .tar.lz4 stream of an archive.
type LZ4Archive struct {
	tar   *ArchiveReader
	s     *Store
	sizes []uint32 // of each block, header included; nil until one stream was sent whole
	offs  []int64  // where each block starts in the stream
	size  int64
	pos   int64

	enc    block.ChunkEncoder
	buf    []byte // tar bytes of one block
	cur    []byte // the encoded block curIdx
	curIdx int
}

// LZ4 returns the .tar.lz4 stream of an open archive.
func (s *Store) LZ4(tar *ArchiveReader) *LZ4Archive {
	l := &LZ4Archive{tar: tar, s: s, curIdx: -1}
	if sizes := s.lz4.load(tar, l.blocks()); sizes != nil {
		l.setSizes(sizes)
	}
	return l
}

func (l *LZ4Archive) setSizes(sizes []uint32) {
	l.sizes = sizes
	l.offs = make([]int64, len(sizes))
	off := int64(len(block.FrameHeader()))
	for i, n := range sizes {
		l.offs[i] = off
		off += int64(n)
	}
	l.size = off + int64(len(block.FrameEnd()))
}

// Known reports whether the stream's length is known (it seeks).
func (l *LZ4Archive) Known() bool { return l.sizes != nil }

// Size is the stream's length, when Known.
func (l *LZ4Archive) Size() int64 { return l.size }

// ETag names the stream.
func (l *LZ4Archive) ETag() string {
	h := sha256.Sum256([]byte(l.tar.key))
	return fmt.Sprintf(`"ib-tarlz4-1-%s"`, hex.EncodeToString(h[:8]))
}

func (l *LZ4Archive) blocks() int {
	return int((l.tar.size + block.ChunkSize - 1) / block.ChunkSize)
}

// encode makes block i the current one.
func (l *LZ4Archive) encode(i int) error {
	if l.curIdx == i {
		return nil
	}
	start := int64(i) * block.ChunkSize
	n := min(block.ChunkSize, l.tar.size-start)
	if cap(l.buf) < int(n) {
		l.buf = make([]byte, block.ChunkSize)
	}
	if _, err := l.tar.Seek(start, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.ReadFull(l.tar, l.buf[:n]); err != nil {
		return err
	}
	l.cur = l.enc.Append(l.cur, l.buf[:n])
	l.curIdx = i
	if l.sizes != nil && len(l.cur) != int(l.sizes[i]) {
		l.curIdx = -1
		return fmt.Errorf("tar.lz4 block %d is %d bytes, %d when the stream was first sent", i, len(l.cur), l.sizes[i])
	}
	return nil
}

func (l *LZ4Archive) Seek(off int64, whence int) (int64, error) {
	if !l.Known() {
		return 0, errors.New("tar.lz4: not seekable before one stream was sent whole")
	}
	return seekTo(&l.pos, l.size, off, whence)
}

// Read reads the stream at the current position (Known streams only).
func (l *LZ4Archive) Read(p []byte) (int, error) {
	if !l.Known() {
		return 0, errors.New("tar.lz4: not seekable before one stream was sent whole")
	}
	head, end := block.FrameHeader(), block.FrameEnd()
	switch {
	case l.pos >= l.size:
		return 0, io.EOF
	case l.pos < int64(len(head)):
		n := copy(p, head[l.pos:])
		l.pos += int64(n)
		return n, nil
	case l.pos >= l.size-int64(len(end)):
		n := copy(p, end[l.pos-(l.size-int64(len(end))):])
		l.pos += int64(n)
		return n, nil
	}
	i := sort.Search(len(l.offs), func(i int) bool { return l.offs[i] > l.pos }) - 1
	if err := l.encode(i); err != nil {
		return 0, err
	}
	n := copy(p, l.cur[l.pos-l.offs[i]:])
	l.pos += int64(n)
	return n, nil
}

// WriteTo writes the whole stream to w; a stream written to its end keeps
// its block sizes for the requests that follow.
func (l *LZ4Archive) WriteTo(w io.Writer) (int64, error) {
	var written int64
	put := func(b []byte) error {
		n, err := w.Write(b)
		written += int64(n)
		return err
	}
	if err := put(block.FrameHeader()); err != nil {
		return written, err
	}
	sizes := make([]uint32, 0, l.blocks())
	for i := range l.blocks() {
		if err := l.encode(i); err != nil {
			return written, err
		}
		sizes = append(sizes, uint32(len(l.cur)))
		if err := put(l.cur); err != nil {
			return written, err
		}
	}
	if err := put(block.FrameEnd()); err != nil {
		return written, err
	}
	if !l.Known() {
		if err := l.s.lz4.store(l.tar, sizes); err != nil {
			l.s.log.Warn("keep tar.lz4 sizes", "err", err)
		}
	}
	return written, nil
}
