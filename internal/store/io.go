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
// (package bank says why not in a sync.Pool): 32 in-memory spools (32 MiB
// at most), and the 256 KiB buffers that bodies are read through and
// temporary files and packs written through.
var (
	spoolBuffers = bank.New(32, func() *bytes.Buffer { return bytes.NewBuffer(make([]byte, 0, spoolMem)) })
	bodyReaders  = bank.New(32, func() *bufio.Reader { return bufio.NewReaderSize(nil, 256<<10) })
	bufWriters   = bank.New(32, func() *bufio.Writer { return bufio.NewWriterSize(nil, 256<<10) })
)

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
		spoolBuffers.Put(s.mem)
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
		spoolBuffers.Put(s.mem)
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
