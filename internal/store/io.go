package store

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"ib/internal/bank"
)

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// spoolMem is the largest wire form a spool holds in memory.
const spoolMem = 1 << 20

// The server's buffers for uploads and downloads, kept between requests
// (package bank says why not in a sync.Pool): 32 in-memory spools (of at
// most 2 MiB each: see keepSpool), and the 256 KiB buffers that bodies are read through and
// temporary files and packs written through.
var (
	spoolBuffers = bank.New(32, func() *bytes.Buffer { return new(bytes.Buffer) })
	bodyReaders  = bank.New(32, func() *bufio.Reader { return bufio.NewReaderSize(nil, 256<<10) })
	bufWriters   = bank.New(32, func() *bufio.Writer { return bufio.NewWriterSize(nil, 256<<10) })
)

// bufferedBody reads an upload's body through a banked buffer (the LZ4
// decoder reads in small pieces, each of which would be a system call);
// release gives the buffer back.
func bufferedBody(body io.Reader) (br *bufio.Reader, release func()) {
	br = bodyReaders.Get()
	br.Reset(body)
	return br, func() { br.Reset(nil); bodyReaders.Put(br) }
}

// keepSpool gives a spool's buffer back to the bank unless it grew past
// twice spoolMem (a buffer doubles as it grows).
func keepSpool(b *bytes.Buffer) {
	if b.Cap() <= 2*spoolMem {
		spoolBuffers.Put(b)
	}
}

// spool holds an upload's wire form: in memory while it is small (most
// blocks of a node's data dir are small files: no temporary file, no
// system calls), in a temporary file when it is known to be larger than
// spoolMem or outgrows it.
type spool struct {
	dir string
	mem *bytes.Buffer
	f   *os.File
	bw  *bufio.Writer
	n   int64
}

// newSpool makes a spool for a wire form of size bytes (-1: not known).
func newSpool(dir string, size int64) (*spool, error) {
	s := &spool{dir: dir}
	if size > spoolMem {
		return s, s.toFile()
	}
	s.mem = spoolBuffers.Get()
	s.mem.Reset()
	if size > 0 {
		// One allocation of the size announced (none for a banked buffer
		// that is large enough); a buffer made while the bank is empty
		// grows only as far as its upload needs.
		s.mem.Grow(int(size))
	}
	return s, nil
}

func (s *spool) toFile() error {
	f, err := os.CreateTemp(s.dir, "block-*")
	if err != nil {
		return err
	}
	s.f, s.bw = f, bufWriters.Get()
	s.bw.Reset(f)
	if s.mem != nil {
		_, err = s.bw.Write(s.mem.Bytes())
		keepSpool(s.mem)
		s.mem = nil
	}
	return err
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) <= spoolMem {
		s.n += int64(len(p))
		return s.mem.Write(p)
	}
	if s.f == nil {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	n, err := s.bw.Write(p)
	s.n += int64(n)
	return n, err
}

// finish flushes what is buffered for the file.
func (s *spool) finish() error {
	if s.bw == nil {
		return nil
	}
	err := s.bw.Flush()
	s.bw.Reset(nil)
	bufWriters.Put(s.bw)
	s.bw = nil
	return err
}

// close removes the temporary file, if any (and if still there), and gives
// the buffers back.
func (s *spool) close() {
	if s.mem != nil {
		keepSpool(s.mem)
		s.mem = nil
	}
	if s.bw != nil {
		s.bw.Reset(nil)
		bufWriters.Put(s.bw)
		s.bw = nil
	}
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}
