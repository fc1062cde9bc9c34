package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/pierrec/lz4/v4"
)

// Level is an LZ4 compression level for the wire form: LZ4's fast
// compressor, or its high-compression (HC) match finder with a search depth.
//
// Level n (1-9) follows at most 2^(n+1) earlier positions of the same 4-byte
// hash (level 7 searches as deep as the reference lz4 tool's level 9, level 9
// 1,024); "max" follows the chain through the whole 64 KiB window. pierrec's
// own HC levels start at a depth of 256, so its Level1 to Level9 all compress
// text at the same speed and ratio; these depths spread the trade-off out.
// On the benchmark's log text, one core: fast 382 MB/s for a ratio of 2.85,
// level 1 168 MB/s for 3.05, level 5 73 MB/s for 3.44, max 42 MB/s for 3.51.
type Level struct {
	name  string
	depth int // 0: the fast compressor
}

func (l Level) String() string { return l.name }

// maxDepth is the depth of "max": the whole window (pierrec's Level9).
const maxDepth = 1 << 16

// DefaultLevel is the product default: LZ4 at its highest level.
var DefaultLevel = Level{"max", maxDepth}

// FastLevel is LZ4's fast compressor.
var FastLevel = Level{"fast", 0}

// ParseLevel accepts "fast", "1" to "9" and "max".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "fast":
		return FastLevel, nil
	case "max", "":
		return DefaultLevel, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 9 || strconv.Itoa(n) != s {
		return Level{}, fmt.Errorf("invalid level %q: want fast, 1-9 or max", s)
	}
	return Level{s, 2 << n}, nil
}

// frameBlock is the LZ4 frame's own block size. 1 MiB keeps the ratio on
// data that alternates between random and compressible stretches and keeps
// each encoder's buffers small.
const frameBlock = lz4.Block1Mb

// NewEncoder returns a writer that turns the bytes written to it into a wire
// form on w, compressed with LZ4's fast compressor (for streams that are
// compressed as they are served). Close it to finish the frame.
func NewEncoder(w io.Writer) (*lz4.Writer, error) {
	zw := lz4.NewWriter(w)
	if err := zw.Apply(
		lz4.CompressionLevelOption(lz4.Fast),
		lz4.BlockSizeOption(frameBlock),
		lz4.ChecksumOption(false), // the CID is the checksum
		lz4.ConcurrencyOption(1),
	); err != nil {
		return nil, fmt.Errorf("lz4 options: %w", err)
	}
	return zw, nil
}

// Encode returns the wire form of data, the same bytes as a Compressor at
// that level writes.
func Encode(data []byte, level Level) ([]byte, error) {
	var e frameEncoder
	out := append([]byte(nil), frameHeaderBytes...)
	var fb []byte
	for len(data) > 0 {
		n := min(len(data), frameBytes)
		fb = e.appendBlock(fb, data[:n], level)
		out = append(out, fb...)
		data = data[n:]
	}
	return append(out, endMark[:]...), nil
}

// NewDecoder returns a reader of the block's bytes from its wire form.
func NewDecoder(r io.Reader) io.Reader { return lz4.NewReader(r) }

// decoders keeps LZ4 readers between blocks: each holds frame buffers that
// would otherwise be allocated again for every small block.
var decoders = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

// copyBufs keeps Verify's copy buffers: io.Copy allocated 32 KiB for every
// block, which on a pack of tiny blocks was most of the server's work
// (1,000,000 blocks: 32 GB allocated, 5.7 of 7.7 CPU-seconds of checking).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Errors of Verify, for callers that branch on them.
var (
	ErrMismatch = errors.New("content does not match its CID")
	ErrTooLarge = errors.New("block exceeds the maximum size")
	ErrBadWire  = errors.New("not a valid LZ4 frame")
)

// Verify decodes a wire form from r, writes the block's bytes to out (may be
// nil) and checks them against want. It never reads more than maxSize+1
// decoded bytes, so a small frame that inflates without bound is refused
// without being expanded. It returns the block's size.
func Verify(r io.Reader, want cid.Cid, maxSize int64, out io.Writer) (int64, error) {
	h := HasherFor(want)
	var w io.Writer = h
	if out != nil {
		w = io.MultiWriter(h, outWriter{out})
	}
	dec := decoders.Get().(*lz4.Reader)
	dec.Reset(r)
	buf := copyBufs.Get().(*[]byte)
	defer func() { dec.Reset(nil); decoders.Put(dec); copyBufs.Put(buf) }()
	n, err := io.CopyBuffer(w, io.LimitReader(dec, maxSize+1), *buf)
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return n, err
		}
		return n, fmt.Errorf("%w: %v", ErrBadWire, err)
	}
	if n > maxSize {
		return n, fmt.Errorf("%w (%d bytes)", ErrTooLarge, maxSize)
	}
	if got := Named(h); !got.Equals(want) {
		return n, fmt.Errorf("%w: got %s, want %s", ErrMismatch, got, want)
	}
	return n, nil
}

// outWriter marks errors of the destination, so that they are not taken for
// a bad frame.
type outWriter struct{ w io.Writer }

func (o outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// A pack is many blocks in one request body: for each block, the length of
// its CID (uvarint), the CID's text, the length of its wire form (uvarint)
// and the wire form.

// AppendFrame appends one block to a pack.
func AppendFrame(pack []byte, cid string, wire []byte) []byte {
	return append(AppendFrameHeader(pack, cid, int64(len(wire))), wire...)
}

// AppendFrameHeader appends what comes before a block's wire form in a
// pack, for a writer that streams the wire form itself.
func AppendFrameHeader(pack []byte, cid string, wireLen int64) []byte {
	pack = binary.AppendUvarint(pack, uint64(len(cid)))
	pack = append(pack, cid...)
	return binary.AppendUvarint(pack, uint64(wireLen))
}

// ReadFrameHeader reads the CID and wire length of the next block of a
// pack; io.EOF at a clean end. The caller reads the wire form next.
func ReadFrameHeader(r io.ByteReader, maxWire int64) (string, int64, error) {
	n, err := binary.ReadUvarint(r)
	if err == io.EOF {
		return "", 0, io.EOF
	}
	if err != nil || n == 0 || n > 100 {
		return "", 0, fmt.Errorf("%w: bad CID length in pack", ErrBadWire)
	}
	cid := make([]byte, n)
	for i := range cid {
		if cid[i], err = r.ReadByte(); err != nil {
			return "", 0, fmt.Errorf("%w: pack cut in a CID", ErrBadWire)
		}
	}
	size, err := binary.ReadUvarint(r)
	if err != nil || size == 0 || size > uint64(maxWire) {
		return "", 0, fmt.Errorf("%w: bad wire length in pack for %s", ErrBadWire, cid)
	}
	return string(cid), int64(size), nil
}

// ChunkSize is the tar bytes of each block of a seekable LZ4 stream.
const ChunkSize = frameBytes

// A ChunkEncoder writes a seekable LZ4 stream: the frame header, then each
// ChunkSize bytes of input as one independent frame block at the fast
// level, then the end mark. The same input always gives the same bytes,
// so a stream's block sizes, once known, say where each block starts.
type ChunkEncoder struct{ e frameEncoder }

// FrameHeader is the stream's first bytes.
func FrameHeader() []byte { return frameHeaderBytes }

// FrameEnd is the stream's last bytes.
func FrameEnd() []byte { return endMark[:] }

// Append appends the frame block of src (at most ChunkSize bytes) to
// dst[:0] and returns it.
func (c *ChunkEncoder) Append(dst, src []byte) []byte { return c.e.appendBlock(dst, src, FastLevel) }
