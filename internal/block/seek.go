package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// DecoderAt returns a reader of a block's bytes from offset off on, read
// from the block's wire form r. It does not decode the frame blocks before
// the one that holds off: a stored frame block is skipped by its length,
// a compressed one by a scan of its sequence headers (which gives its
// decoded length without writing a byte), so reading the last megabyte of
// a 128 MiB block costs about one frame block of decoding. A frame whose
// blocks depend on each other is decoded from its start instead.
//
// The bytes are not checked against the block's CID (that needs every
// byte from the start); callers that serve a whole block use Verify.
// Release the reader's buffers with Close.
func DecoderAt(r io.Reader, off int64) (io.ReadCloser, error) {
	h, err := readFrameHeader(r)
	if err != nil {
		return nil, err
	}
	if !h.independent {
		d := lz4.NewReader(io.MultiReader(h.replay(), r))
		if _, err := io.CopyN(io.Discard, d, off); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadWire, err)
		}
		return io.NopCloser(d), nil
	}
	fr := &frameReader{r: r, h: h}
	fr.bufs = frameBufs.Get().(*[2][]byte)
	for {
		n, err := fr.skipBlock(off)
		if err != nil {
			fr.Close()
			return nil, err
		}
		if n < 0 { // the block holding off is decoded in fr.cur
			return fr, nil
		}
		off -= n
	}
}

// frameHeader is what a wire form's LZ4 frame header says.
type frameHeader struct {
	raw           []byte
	independent   bool
	blockChecksum bool
	blockMax      int
}

// replay gives back the header bytes already read.
func (h frameHeader) replay() io.Reader { return &byteSlice{h.raw} }

type byteSlice struct{ b []byte }

func (s *byteSlice) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

const frameMagic = 0x184D2204

func readFrameHeader(r io.Reader) (frameHeader, error) {
	var h frameHeader
	buf := make([]byte, 7, 19)
	if _, err := io.ReadFull(r, buf); err != nil {
		return h, fmt.Errorf("%w: frame header: %v", ErrBadWire, err)
	}
	if binary.LittleEndian.Uint32(buf) != frameMagic {
		return h, fmt.Errorf("%w: not an LZ4 frame", ErrBadWire)
	}
	flg, bd := buf[4], buf[5]
	if flg>>6 != 1 {
		return h, fmt.Errorf("%w: LZ4 frame version %d", ErrBadWire, flg>>6)
	}
	extra := 0
	if flg&0x08 != 0 {
		extra += 8 // content size
	}
	if flg&0x01 != 0 {
		extra += 4 // dictionary id
	}
	if extra > 0 {
		buf = buf[:7+extra]
		if _, err := io.ReadFull(r, buf[7:]); err != nil {
			return h, fmt.Errorf("%w: frame header: %v", ErrBadWire, err)
		}
	}
	switch bd >> 4 & 7 {
	case 4:
		h.blockMax = 64 << 10
	case 5:
		h.blockMax = 256 << 10
	case 6:
		h.blockMax = 1 << 20
	case 7:
		h.blockMax = 4 << 20
	default:
		return h, fmt.Errorf("%w: LZ4 block size code %d", ErrBadWire, bd>>4&7)
	}
	h.raw = buf
	h.independent = flg&0x20 != 0
	h.blockChecksum = flg&0x10 != 0
	return h, nil
}

// frameBufs holds a compressed and a decoded frame block of the largest
// size (4 MiB), shared between readers over time.
var frameBufs = sync.Pool{New: func() any {
	return &[2][]byte{make([]byte, 4<<20), make([]byte, 4<<20)}
}}

// frameReader reads the decoded bytes of an LZ4 frame of independent
// blocks, one frame block at a time.
type frameReader struct {
	r    io.Reader
	h    frameHeader
	bufs *[2][]byte
	cur  []byte // decoded bytes not yet read
	done bool
}

// nextBlock reads the next frame block's length word: its stored length
// and whether it is stored uncompressed; end is true at the end mark.
func (f *frameReader) nextBlock() (n int, stored, end bool, err error) {
	var w [4]byte
	if _, err := io.ReadFull(f.r, w[:]); err != nil {
		return 0, false, false, fmt.Errorf("%w: frame cut: %v", ErrBadWire, err)
	}
	v := binary.LittleEndian.Uint32(w[:])
	if v == 0 {
		return 0, false, true, nil
	}
	n, stored = int(v&0x7fffffff), v&0x80000000 != 0
	if n > f.h.blockMax {
		return 0, false, false, fmt.Errorf("%w: frame block of %d bytes (at most %d)", ErrBadWire, n, f.h.blockMax)
	}
	return n, stored, false, nil
}

// skipBlock passes over the next frame block if all its bytes come before
// off, returning its decoded length; otherwise it decodes it into f.cur,
// dropping the off bytes before, and returns -1.
func (f *frameReader) skipBlock(off int64) (int64, error) {
	n, stored, end, err := f.nextBlock()
	if err != nil {
		return 0, err
	}
	if end {
		if off > 0 {
			return 0, fmt.Errorf("%w: offset past the block's end", ErrBadWire)
		}
		f.done, f.cur = true, nil
		return -1, nil
	}
	if stored && int64(n) <= off {
		if err := f.discard(int64(n) + f.checksumLen()); err != nil {
			return 0, err
		}
		return int64(n), nil
	}
	src := f.bufs[0][:n]
	if _, err := io.ReadFull(f.r, src); err != nil {
		return 0, fmt.Errorf("%w: frame cut: %v", ErrBadWire, err)
	}
	if err := f.discard(f.checksumLen()); err != nil {
		return 0, err
	}
	if !stored {
		size, err := decodedLen(src)
		if err != nil {
			return 0, err
		}
		if int64(size) <= off {
			return int64(size), nil
		}
	}
	if err := f.decode(src, stored); err != nil {
		return 0, err
	}
	f.cur = f.cur[off:]
	return -1, nil
}

func (f *frameReader) checksumLen() int64 {
	if f.h.blockChecksum {
		return 4
	}
	return 0
}

func (f *frameReader) discard(n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := f.r.(io.Seeker); ok {
		if _, err := s.Seek(n, io.SeekCurrent); err == nil {
			return nil
		}
	}
	if _, err := io.CopyN(io.Discard, f.r, n); err != nil {
		return fmt.Errorf("%w: frame cut: %v", ErrBadWire, err)
	}
	return nil
}

func (f *frameReader) decode(src []byte, stored bool) error {
	if stored {
		f.cur = src
		return nil
	}
	dst := f.bufs[1][:f.h.blockMax]
	m, err := lz4.UncompressBlock(src, dst)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadWire, err)
	}
	f.cur = dst[:m]
	return nil
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.done || f.bufs == nil {
			return 0, io.EOF
		}
		n, stored, end, err := f.nextBlock()
		if err != nil {
			return 0, err
		}
		if end {
			f.done = true
			return 0, io.EOF
		}
		src := f.bufs[0][:n]
		if _, err := io.ReadFull(f.r, src); err != nil {
			return 0, fmt.Errorf("%w: frame cut: %v", ErrBadWire, err)
		}
		if err := f.discard(f.checksumLen()); err != nil {
			return 0, err
		}
		if err := f.decode(src, stored); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// Close returns the reader's buffers.
func (f *frameReader) Close() error {
	if f.bufs != nil {
		frameBufs.Put(f.bufs)
		f.bufs, f.cur = nil, nil
	}
	return nil
}

// errBadSequence is a compressed frame block that cannot be decoded.
var errBadSequence = errors.New("bad LZ4 sequence")

// decodedLen is the length a compressed LZ4 block decodes to, from its
// sequence headers alone: each sequence is a token, its literals and (but
// for the last) a 2-byte offset and a match length.
func decodedLen(src []byte) (int, error) {
	n, i := 0, 0
	for i < len(src) {
		tok := src[i]
		i++
		lit, err := seqLen(src, &i, int(tok>>4))
		if err != nil {
			return 0, err
		}
		if lit > len(src)-i {
			return 0, fmt.Errorf("%w: %w: literals past the block", ErrBadWire, errBadSequence)
		}
		i += lit
		n += lit
		if i == len(src) {
			return n, nil // the last sequence has no match
		}
		if len(src)-i < 2 {
			return 0, fmt.Errorf("%w: %w: offset cut", ErrBadWire, errBadSequence)
		}
		if off := int(src[i]) | int(src[i+1])<<8; off == 0 || off > n {
			return 0, fmt.Errorf("%w: %w: match offset %d at %d", ErrBadWire, errBadSequence, off, n)
		}
		i += 2
		ml, err := seqLen(src, &i, int(tok&15))
		if err != nil {
			return 0, err
		}
		n += ml + 4
		if n > 4<<20 {
			return 0, fmt.Errorf("%w: %w: frame block decodes past 4 MiB", ErrBadWire, errBadSequence)
		}
	}
	return n, nil
}

// seqLen reads the rest of a literal or match length whose 4-bit start is
// base: 15 means more bytes follow, each added, until one below 255.
func seqLen(src []byte, i *int, base int) (int, error) {
	if base != 15 {
		return base, nil
	}
	for {
		if *i >= len(src) {
			return 0, fmt.Errorf("%w: %w: length cut", ErrBadWire, errBadSequence)
		}
		b := src[*i]
		*i++
		base += int(b)
		if b != 255 {
			return base, nil
		}
		if base > 4<<20 {
			return 0, fmt.Errorf("%w: %w: length past 4 MiB", ErrBadWire, errBadSequence)
		}
	}
}
