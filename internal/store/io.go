package store

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
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

// spool holds an upload's wire form: in memory while it is small (most
// blocks of a node's data dir are small files: no temporary file, no
// system calls), in a temporary file once it outgrows memLimit.
type spool struct {
	dir      string
	memLimit int
	mem      *bytes.Buffer
	f        *os.File
	bw       *bufio.Writer
	n        int64
}

// spoolBuffers keeps the in-memory spools between uploads: growing a fresh
// one to 1 MiB for every large block cost more than decoding it.
var spoolBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newSpool(dir string, memLimit int) *spool {
	b := spoolBuffers.Get().(*bytes.Buffer)
	b.Reset()
	return &spool{dir: dir, memLimit: memLimit, mem: b}
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) <= s.memLimit {
		s.n += int64(len(p))
		return s.mem.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "block-*")
		if err != nil {
			return 0, err
		}
		s.f, s.bw = f, bufio.NewWriterSize(f, 256<<10)
		if _, err := s.bw.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		s.mem.Reset()
	}
	n, err := s.bw.Write(p)
	s.n += int64(n)
	return n, err
}

// finish flushes what is buffered for the file.
func (s *spool) finish() error {
	if s.bw != nil {
		return s.bw.Flush()
	}
	return nil
}

// close removes the temporary file, if any (and if still there), and gives
// the memory back.
func (s *spool) close() {
	if s.mem != nil && s.mem.Cap() <= 2*s.memLimit {
		spoolBuffers.Put(s.mem)
	}
	s.mem = nil
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}
